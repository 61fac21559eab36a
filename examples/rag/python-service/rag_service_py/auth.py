"""Bearer JWT verification with the Rust service's rules (`tenancy_runtime::http::JwtVerifier`):
HS256 with a shared secret; `exp`, `iss`, `aud` and `sub` (a UUID) required; `nbf` and `iat`,
when present, not in the future beyond the leeway; the lifetime (`exp - iat`, or `exp - now`)
at most the maximum; tokens over 16 KiB are malformed; the header's `alg` must be HS256.
Each refusal has the same reason name as in Rust (`expired_token`, `bad_signature`, ...)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

MAX_TOKEN_BYTES = 16 * 1024
ALGORITHM = "HS256"


class AuthFailure(Exception):
    """Why a request's token was refused; `reason` is the Rust service's reason name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JwtVerifier:
    """Verifies HS256 bearer tokens for one issuer and audience."""

    def __init__(
        self,
        secret: bytes,
        issuer: str,
        audience: str,
        *,
        leeway_secs: int = 0,
        max_lifetime_secs: int | None = None,
    ) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.leeway_secs = leeway_secs
        self.max_lifetime_secs = max_lifetime_secs

    def __repr__(self) -> str:
        return f"JwtVerifier(issuer={self.issuer!r}, audience={self.audience!r}, secret=<hidden>)"

    def verify(self, token: str, now: float | None = None) -> uuid.UUID:
        """The user (`sub`) of a valid token; `AuthFailure` naming the reason otherwise."""
        if len(token.encode()) > MAX_TOKEN_BYTES:
            raise AuthFailure("malformed_token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthFailure("malformed_token") from None
        if header.get("alg") != ALGORITHM:
            raise AuthFailure("bad_signature")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_secs,
                # `iat` is checked below (the Rust service names its failure on its own).
                options={"require": ["exp", "iss", "aud", "sub"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure("expired_token") from None
        except jwt.ImmatureSignatureError:
            raise AuthFailure("token_not_yet_valid") from None
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
            raise AuthFailure("bad_signature") from None
        except jwt.InvalidIssuerError:
            raise AuthFailure("wrong_issuer") from None
        except jwt.InvalidAudienceError:
            raise AuthFailure("wrong_audience") from None
        except jwt.PyJWTError:
            raise AuthFailure("malformed_token") from None
        self._check_times(claims, int(time.time() if now is None else now))
        try:
            return uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise AuthFailure("malformed_token") from None

    def _check_times(self, claims: dict[str, Any], now: int) -> None:
        iat = claims.get("iat")
        if iat is not None and not isinstance(iat, int):
            raise AuthFailure("malformed_token")
        if iat is not None and iat > now + self.leeway_secs:
            raise AuthFailure("token_issued_in_future")
        if self.max_lifetime_secs is not None:
            exp = claims["exp"]
            start = min(iat if iat is not None else now, now)
            if exp - start > self.max_lifetime_secs + self.leeway_secs:
                raise AuthFailure("token_lifetime_too_long")


def mint_token(secret: bytes, issuer: str, audience: str, user: uuid.UUID, ttl_secs: int) -> str:
    """An HS256 token for `user` valid for `ttl_secs` (negative: already expired), with the
    claims the Rust service's `demo::mint_token` writes (development and tests)."""
    now = int(time.time())
    claims = {"sub": str(user), "iss": issuer, "aud": audience, "exp": now + ttl_secs, "iat": now}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
