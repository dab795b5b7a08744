"""Every line of JWT code in Folio: issue and verify HS256 access and refresh tokens.

python-jose is hardened as ../shared/PITFALLS.md says: one algorithm, required claims,
issuer and audience checked, every library error caught as ``JOSEError``. Swapping the
library means rewriting this module only.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from jose import jwt
from jose.exceptions import JOSEError

ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "sub", "jti", "iss", "aud")
TokenType = Literal["access", "refresh"]


class InvalidToken(Exception):
    """The token is malformed, forged, expired, of the wrong type or for someone else."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    jti: str
    token_type: TokenType
    expires_at: int


@dataclass(frozen=True)
class TokenIssuer:
    """Issues and verifies tokens with one key, issuer and audience."""

    secret_key: str
    issuer: str
    audience: str
    access_ttl: int
    refresh_ttl: int

    def issue(self, *, user_id: int, token_type: TokenType, now: float | None = None) -> str:
        issued_at = int(time.time() if now is None else now)
        ttl = self.access_ttl if token_type == "access" else self.refresh_ttl
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "type": token_type,
            "jti": secrets.token_urlsafe(16),
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl,
            "iss": self.issuer,
            "aud": self.audience,
        }
        return str(jwt.encode(claims, self.secret_key, algorithm=ALGORITHM))

    def verify(self, token: str, *, expected_type: TokenType) -> TokenClaims:
        """Claims of a valid token of ``expected_type``; ``InvalidToken`` for anything else."""
        if not token or len(token) > 4096:
            raise InvalidToken("malformed token")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise InvalidToken("unexpected algorithm")
            claims = jwt.decode(
                token,
                self.secret_key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={f"require_{claim}": True for claim in REQUIRED_CLAIMS}
                | {"leeway": LEEWAY_SECONDS},
            )
        except JOSEError as exc:
            raise InvalidToken(str(exc)) from None
        return _parse_claims(claims, expected_type, leeway=LEEWAY_SECONDS)


def _parse_claims(claims: dict[str, Any], expected_type: TokenType, *, leeway: int) -> TokenClaims:
    if claims.get("type") != expected_type:
        raise InvalidToken(f"wrong token type, expected {expected_type}")
    sub, jti, exp, iat = claims.get("sub"), claims.get("jti"), claims.get("exp"), claims.get("iat")
    if not isinstance(sub, str) or not sub.isdigit() or len(sub) > 18:
        raise InvalidToken("bad subject")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 64:
        raise InvalidToken("bad token id")
    if not isinstance(exp, int) or not isinstance(iat, int):
        raise InvalidToken("bad timestamps")
    if iat > time.time() + leeway:  # jose checks nbf and exp, not a future iat
        raise InvalidToken("issued in the future")
    return TokenClaims(user_id=int(sub), jti=jti, token_type=expected_type, expires_at=exp)
