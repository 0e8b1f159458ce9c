package mgpass

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Credential is how calls authenticate: an access token and a personal or organization API key
// (`mgp_...`) travel as `authorization: Bearer`, a loyalty partner key as `x-api-key`.
type Credential struct {
	header, value string
}

// AccessToken is a user's or application's access token.
func AccessToken(token string) Credential { return Credential{"authorization", "Bearer " + token} }

// APIKey is a personal or organization API key (`mgp_...`).
func APIKey(key string) Credential { return Credential{"authorization", "Bearer " + key} }

// PartnerKey is a loyalty partner's key.
func PartnerKey(key string) Credential { return Credential{"x-api-key", key} }

// Client is a connection to mgpass with every service's client.
type Client struct {
	*Clients
	Conn *grpc.ClientConn
}

// Option configures Dial.
type Option func(*options)

type options struct {
	credential func() (Credential, bool)
	tls        *tls.Config
	extra      []grpc.DialOption
}

// WithCredential sends the credential on every call.
func WithCredential(c Credential) Option {
	return func(o *options) { o.credential = func() (Credential, bool) { return c, true } }
}

// WithCredentialFunc reads the credential before every call (for tokens that refresh).
func WithCredentialFunc(f func() (Credential, bool)) Option {
	return func(o *options) { o.credential = f }
}

// WithTLSConfig sets the TLS configuration of `https://` endpoints.
func WithTLSConfig(c *tls.Config) Option { return func(o *options) { o.tls = c } }

// WithDialOptions adds grpc-go dial options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.extra = append(o.extra, opts...) }
}

// Dial connects to mgpass. endpoint is `http://host:port` (plaintext HTTP/2), `https://host[:port]`
// (TLS) or `host:port` (plaintext). Failed calls return *Error.
func Dial(endpoint string, opts ...Option) (*Client, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	target, transport := strings.TrimPrefix(endpoint, "http://"), insecure.NewCredentials()
	if strings.HasPrefix(endpoint, "https://") {
		target = strings.TrimPrefix(endpoint, "https://")
		if !strings.Contains(target, ":") {
			target += ":443"
		}
		cfg := o.tls
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		transport = credentials.NewTLS(cfg)
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithChainUnaryInterceptor(credentialUnary(o.credential), errorUnary),
		grpc.WithChainStreamInterceptor(credentialStream(o.credential)),
	}, o.extra...)
	conn, err := grpc.NewClient(strings.TrimSuffix(target, "/"), dial...)
	if err != nil {
		return nil, fmt.Errorf("mgpass: dial %s: %w", endpoint, err)
	}
	return &Client{Clients: NewClients(conn), Conn: conn}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }

func withCredential(ctx context.Context, credential func() (Credential, bool)) context.Context {
	if credential == nil {
		return ctx
	}
	if c, ok := credential(); ok {
		return metadata.AppendToOutgoingContext(ctx, c.header, c.value)
	}
	return ctx
}

func credentialUnary(credential func() (Credential, bool)) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(withCredential(ctx, credential), method, req, reply, cc, opts...)
	}
}

func credentialStream(credential func() (Credential, bool)) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(withCredential(ctx, credential), desc, cc, method, opts...)
	}
}

func errorUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
		return AsError(err)
	}
	return nil
}
