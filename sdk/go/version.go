// Package mgpass is the Go SDK of mgpass: generated grpc-go clients for every service (under
// gen/mgpass/<domain>/v1), a client builder that attaches credentials, and an access-token
// verifier.
package mgpass

// Version is the SDK's version, the same as the server workspace's.
const Version = "0.1.0"
