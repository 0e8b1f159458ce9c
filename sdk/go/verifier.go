package mgpass

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// VerifierConfig configures a TokenVerifier.
type VerifierConfig struct {
	// Issuer is mgpass's issuer (its server.public_url), e.g. https://id.example.com.
	Issuer string
	// Audience is the audience this resource server accepts (`mgpass` for the mgpass API).
	Audience string
	// JWKSURL defaults to Issuer + "/.well-known/jwks.json".
	JWKSURL string
	// RequiredScopes must all be in the token's space-separated `scope` claim.
	RequiredScopes []string
	// Leeway is the tolerated clock skew (default 30 s, like the server).
	Leeway time.Duration
	// CacheFor is how long a fetched key set is used before it is fetched again (default 10 min).
	CacheFor time.Duration
	// HTTPClient fetches the JWKS (default: a client with a 10 s timeout).
	HTTPClient *http.Client
}

// Claims are the verified claims of an mgpass access token.
type Claims struct {
	jwt.Claims
	Scope    string   `json:"scope"`
	Roles    []string `json:"roles,omitempty"`
	Email    string   `json:"email,omitempty"`
	SID      string   `json:"sid,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
	OrgID    string   `json:"org_id,omitempty"`
}

// Scopes is the scope claim as a list.
func (c *Claims) Scopes() []string { return strings.Fields(c.Scope) }

// Reasons of TokenError.
const (
	ReasonTokenMalformed        = "TOKEN_MALFORMED"
	ReasonTokenSignatureInvalid = "TOKEN_SIGNATURE_INVALID"
	ReasonTokenExpired          = "TOKEN_EXPIRED"
	ReasonWrongIssuer           = "WRONG_ISSUER"
	ReasonWrongAudience         = "WRONG_AUDIENCE"
	ReasonInsufficientScope     = "INSUFFICIENT_SCOPE"
	ReasonJWKSUnavailable       = "JWKS_UNAVAILABLE"
)

// TokenError is why a token was refused; Reason is stable.
type TokenError struct {
	Reason string
	Err    error
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("mgpass: token refused: %s: %v", e.Reason, e.Err)
}
func (e *TokenError) Unwrap() error { return e.Err }

// TokenVerifier verifies mgpass access tokens offline: the signature against the cached JWKS
// (fetched again when a token names a key the cache lacks, which is how rotation arrives, at most
// every 30 s), then iss, aud, exp and the required scopes. Safe for concurrent use.
type TokenVerifier struct {
	cfg VerifierConfig

	mu        sync.Mutex
	keys      jose.JSONWebKeySet
	fetchedAt time.Time
}

// minRefetch bounds how often unknown key ids can make the verifier fetch the JWKS.
const minRefetch = 30 * time.Second

// NewTokenVerifier creates a verifier; it fetches the JWKS on first use.
func NewTokenVerifier(cfg VerifierConfig) *TokenVerifier {
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/jwks.json"
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.CacheFor == 0 {
		cfg.CacheFor = 10 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &TokenVerifier{cfg: cfg}
}

// Verify checks token (a `Bearer ` prefix is allowed) and returns its claims, or a *TokenError.
func (v *TokenVerifier) Verify(ctx context.Context, token string) (*Claims, error) {
	token = strings.TrimSpace(strings.TrimPrefix(token, "Bearer "))
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil || len(parsed.Headers) != 1 {
		return nil, &TokenError{ReasonTokenMalformed, fmt.Errorf("not a signed JWT: %v", err)}
	}
	key, err := v.key(ctx, parsed.Headers[0].KeyID)
	if err != nil {
		return nil, err
	}
	claims := &Claims{}
	if err := parsed.Claims(key.Key, claims); err != nil {
		return nil, &TokenError{ReasonTokenSignatureInvalid, err}
	}
	if claims.Expiry == nil || claims.Subject == "" {
		return nil, &TokenError{ReasonTokenMalformed, errors.New("exp and sub are required")}
	}
	expected := jwt.Expected{Issuer: v.cfg.Issuer, AnyAudience: jwt.Audience{v.cfg.Audience}, Time: time.Now()}
	if err := claims.ValidateWithLeeway(expected, v.cfg.Leeway); err != nil {
		switch {
		case errors.Is(err, jwt.ErrExpired):
			return nil, &TokenError{ReasonTokenExpired, err}
		case errors.Is(err, jwt.ErrInvalidIssuer):
			return nil, &TokenError{ReasonWrongIssuer, err}
		case errors.Is(err, jwt.ErrInvalidAudience):
			return nil, &TokenError{ReasonWrongAudience, err}
		default:
			return nil, &TokenError{ReasonTokenMalformed, err}
		}
	}
	var missing []string
	for _, scope := range v.cfg.RequiredScopes {
		if !slices.Contains(claims.Scopes(), scope) {
			missing = append(missing, scope)
		}
	}
	if len(missing) > 0 {
		return nil, &TokenError{ReasonInsufficientScope, fmt.Errorf("the token lacks the scope(s) %s", strings.Join(missing, ", "))}
	}
	return claims, nil
}

// key returns the key with this id from the cache, fetching the JWKS when the cache is stale or
// lacks the id (rate-limited so that forged key ids cannot make it fetch on every call).
func (v *TokenVerifier) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	age := time.Since(v.fetchedAt)
	found := v.keys.Key(kid)
	if v.fetchedAt.IsZero() || age > v.cfg.CacheFor || (len(found) == 0 && age > minRefetch) {
		if err := v.fetch(ctx); err != nil {
			if len(found) == 0 {
				return nil, &TokenError{ReasonJWKSUnavailable, err}
			}
		} else {
			found = v.keys.Key(kid)
		}
	}
	if len(found) == 0 {
		return nil, &TokenError{ReasonTokenSignatureInvalid, fmt.Errorf("no key %q in the issuer's JWKS", kid)}
	}
	return &found[0], nil
}

func (v *TokenVerifier) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return err
	}
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", v.cfg.JWKSURL, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return fmt.Errorf("GET %s: %w", v.cfg.JWKSURL, err)
	}
	v.keys, v.fetchedAt = set, time.Now()
	return nil
}
