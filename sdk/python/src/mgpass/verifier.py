"""Offline verification of mgpass access tokens for Python resource servers.

The JWKS is fetched once and cached; a token naming a key the cache lacks fetches it again (how
key rotation arrives). Then the ES256/EdDSA signature, ``iss``, ``aud``, ``exp`` (with leeway)
and the required scopes are checked. ``verify`` blocks on the first fetch: from asyncio code call
it through ``asyncio.to_thread`` or warm it up at start.
"""

from __future__ import annotations

import typing

import jwt

Reason = typing.Literal[
    "TOKEN_MALFORMED", "TOKEN_SIGNATURE_INVALID", "TOKEN_EXPIRED", "WRONG_ISSUER", "WRONG_AUDIENCE",
    "INSUFFICIENT_SCOPE", "JWKS_UNAVAILABLE",
]


class TokenVerificationError(Exception):
    """Why a token was refused; ``reason`` is stable."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class TokenVerifier:
    def __init__(self, issuer: str, audience: str, *, jwks_url: typing.Optional[str] = None,
                 required_scopes: typing.Sequence[str] = (), leeway_secs: int = 30,
                 cache_secs: int = 600) -> None:
        self.issuer = issuer
        self.audience = audience
        self.required_scopes = list(required_scopes)
        self.leeway_secs = leeway_secs
        url = jwks_url or issuer.rstrip("/") + "/.well-known/jwks.json"
        # PyJWKClient caches the set for `lifespan` seconds and refetches on an unknown `kid`.
        self._jwks = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=cache_secs, timeout=10)

    def verify(self, token: str) -> dict[str, typing.Any]:
        """The verified claims of ``token`` (``Bearer `` prefix allowed), plus ``scopes`` as a list."""
        token = token.removeprefix("Bearer ").strip()
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.exceptions.PyJWKClientConnectionError as error:
            raise TokenVerificationError("JWKS_UNAVAILABLE", str(error)) from error
        except jwt.exceptions.PyJWKClientError as error:
            raise TokenVerificationError("TOKEN_SIGNATURE_INVALID", str(error)) from error
        except jwt.exceptions.DecodeError as error:
            raise TokenVerificationError("TOKEN_MALFORMED", str(error)) from error
        try:
            claims: dict[str, typing.Any] = jwt.decode(
                token, key, algorithms=["ES256", "EdDSA"], audience=self.audience, issuer=self.issuer,
                leeway=self.leeway_secs, options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.exceptions.ExpiredSignatureError as error:
            raise TokenVerificationError("TOKEN_EXPIRED", str(error)) from error
        except jwt.exceptions.InvalidAudienceError as error:
            raise TokenVerificationError("WRONG_AUDIENCE", str(error)) from error
        except jwt.exceptions.InvalidIssuerError as error:
            raise TokenVerificationError("WRONG_ISSUER", str(error)) from error
        except jwt.exceptions.InvalidSignatureError as error:
            raise TokenVerificationError("TOKEN_SIGNATURE_INVALID", str(error)) from error
        except jwt.exceptions.InvalidTokenError as error:
            raise TokenVerificationError("TOKEN_MALFORMED", str(error)) from error
        scopes = str(claims.get("scope", "")).split()
        missing = [s for s in self.required_scopes if s not in scopes]
        if missing:
            raise TokenVerificationError("INSUFFICIENT_SCOPE", f"the token lacks the scope(s) {', '.join(missing)}")
        claims["scopes"] = scopes
        return claims
