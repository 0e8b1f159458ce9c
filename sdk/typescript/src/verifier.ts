/**
 * Offline verification of mgpass access tokens for Node resource servers: the signature against
 * the issuer's JWKS (fetched once, cached, and fetched again when a token names a key it has not
 * seen, which is how key rotation reaches it), then `iss`, `aud`, `exp` (with leeway) and the
 * required scopes. No call to mgpass per request.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";

export interface VerifierOptions {
  /** The mgpass issuer (its `server.public_url`), e.g. `https://id.example.com`. */
  issuer: string;
  /** The audience this resource server accepts (`mgpass` for the mgpass API, or an API resource's identifier). */
  audience: string;
  /** The JWKS URL; default `<issuer>/.well-known/jwks.json`. */
  jwksUrl?: string;
  /** Scopes every token must carry (space-separated `scope` claim). */
  requiredScopes?: string[];
  /** Tolerated clock skew in seconds (default 30, like the server). */
  leewaySecs?: number;
  /** How long a fetched key set is used before it is fetched again (default 10 minutes). */
  cacheMaxAgeMs?: number;
}

/** The verified claims of an access token. */
export interface VerifiedToken extends JWTPayload {
  sub: string;
  scope: string;
  scopes: string[];
  roles?: string[];
  email?: string;
  sid?: string;
  client_id?: string;
}

/** Why a token was refused: `reason` is stable (`TOKEN_EXPIRED`, `WRONG_AUDIENCE`, ...). */
export class TokenVerificationError extends Error {
  constructor(
    readonly reason:
      | "TOKEN_MALFORMED"
      | "TOKEN_SIGNATURE_INVALID"
      | "TOKEN_EXPIRED"
      | "WRONG_ISSUER"
      | "WRONG_AUDIENCE"
      | "INSUFFICIENT_SCOPE"
      | "JWKS_UNAVAILABLE",
    message: string,
  ) {
    super(message);
    this.name = "TokenVerificationError";
  }
}

export class TokenVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(private readonly options: VerifierOptions) {
    const url = options.jwksUrl ?? `${options.issuer.replace(/\/$/, "")}/.well-known/jwks.json`;
    this.jwks = createRemoteJWKSet(new URL(url), {
      cacheMaxAge: options.cacheMaxAgeMs ?? 10 * 60 * 1000,
      // A token signed by a key not yet in the cache refetches at most every 30 s.
      cooldownDuration: 30 * 1000,
    });
  }

  /** Verifies a token (with or without the `Bearer ` prefix) and returns its claims. */
  async verify(token: string): Promise<VerifiedToken> {
    const jwt = token.replace(/^Bearer\s+/i, "");
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, this.jwks, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: ["ES256", "EdDSA"],
        clockTolerance: this.options.leewaySecs ?? 30,
        requiredClaims: ["exp", "sub"],
      }));
    } catch (err) {
      throw translate(err);
    }
    const scope = typeof payload.scope === "string" ? payload.scope : "";
    const scopes = scope.split(" ").filter(Boolean);
    const missing = (this.options.requiredScopes ?? []).filter((s) => !scopes.includes(s));
    if (missing.length > 0) {
      throw new TokenVerificationError("INSUFFICIENT_SCOPE", `the token lacks the scope(s) ${missing.join(", ")}`);
    }
    return { ...payload, sub: payload.sub as string, scope, scopes } as VerifiedToken;
  }
}

function translate(err: unknown): TokenVerificationError {
  if (err instanceof errors.JWTExpired) return new TokenVerificationError("TOKEN_EXPIRED", err.message);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "iss") return new TokenVerificationError("WRONG_ISSUER", err.message);
    if (err.claim === "aud") return new TokenVerificationError("WRONG_AUDIENCE", err.message);
    return new TokenVerificationError("TOKEN_MALFORMED", err.message);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey) {
    return new TokenVerificationError("TOKEN_SIGNATURE_INVALID", (err as Error).message);
  }
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) {
    return new TokenVerificationError("JWKS_UNAVAILABLE", (err as Error).message);
  }
  return new TokenVerificationError("TOKEN_MALFORMED", err instanceof Error ? err.message : String(err));
}
