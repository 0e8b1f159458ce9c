/**
 * @mgpass/sdk: typed clients for every mgpass service. Pick a transport with
 * `@mgpass/sdk/web` (browsers, grpc-web) or `@mgpass/sdk/node` (Node, gRPC over HTTP/2 or
 * grpc-web); messages are under `@mgpass/sdk/gen/mgpass/<domain>/v1/<file>_pb`.
 */
export { createClients, type MgpassClients } from "./gen/clients.js";
export { credentialInterceptor, type Credential } from "./credentials.js";
export { MgpassError, toMgpassError, call } from "./errors.js";
export { Code, ConnectError } from "@connectrpc/connect";
/** The SDK version, the same as the server workspace's. */
export { version } from "./version.js";
