"""Every line of JWT code in Folio: issue and verify HS256 access and refresh tokens.

Every token carries a session id (``sid``): the pair issued by one login, and every
pair rotated from it, share one, so that a whole login session can be revoked at once.

python-jose is hardened as ../shared/PITFALLS.md says: one algorithm, required claims,
issuer and audience checked, every library error caught as ``JOSEError``. Swapping the
library means rewriting this module only.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from jose import jwt
from jose.exceptions import JOSEError

ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 4096
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "sub", "jti", "sid", "iss", "aud")
TokenType = Literal["access", "refresh"]
ACCESS: TokenType = "access"
REFRESH: TokenType = "refresh"
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+\Z")
_USER_ID = re.compile(r"^[1-9][0-9]{0,17}\Z")


def new_session_id() -> str:
    """A fresh, unguessable id for one login session."""
    return secrets.token_urlsafe(16)


class InvalidToken(Exception):
    """The token is malformed, forged, expired, of the wrong type or for someone else."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    jti: str
    session_id: str
    token_type: TokenType
    issued_at: int
    expires_at: int

    @property
    def accepted_until(self) -> int:
        """Unix time after which ``verify`` refuses the token (its ``exp`` plus the leeway).

        A revocation must last this long: one that ended at ``exp`` would let the token
        back in for the leeway's length.
        """
        return self.expires_at + LEEWAY_SECONDS


@dataclass(frozen=True)
class TokenIssuer:
    """Issues and verifies tokens with one key, issuer and audience."""

    secret_key: str
    issuer: str
    audience: str
    access_ttl: int
    refresh_ttl: int

    def issue(
        self, *, user_id: int, token_type: TokenType, session_id: str, now: float | None = None
    ) -> str:
        """A signed token of ``token_type`` for ``user_id`` in login session ``session_id``."""
        issued_at = int(time.time() if now is None else now)
        ttl = self.access_ttl if token_type == ACCESS else self.refresh_ttl
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "type": token_type,
            "jti": secrets.token_urlsafe(16),
            "sid": session_id,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl,
            "iss": self.issuer,
            "aud": self.audience,
        }
        return str(jwt.encode(claims, self.secret_key, algorithm=ALGORITHM))

    def verify(self, token: str, *, expected_type: TokenType) -> TokenClaims:
        """Claims of a valid token of ``expected_type``; ``InvalidToken`` for anything else."""
        _check_shape(token)
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


def _check_shape(token: str) -> None:
    """Three canonical base64url segments, so that one token has exactly one spelling.

    base64 leaves spare bits in the last character of a segment: without this check,
    several strings would carry the very same signature.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("malformed token")
    segments = token.split(".")
    if len(segments) != 3 or not all(_SEGMENT.match(s) for s in segments):
        raise InvalidToken("malformed token")
    for segment in segments:
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            raise InvalidToken("malformed token") from None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != segment:
            raise InvalidToken("malformed token")


def _parse_claims(claims: dict[str, Any], expected_type: TokenType, *, leeway: int) -> TokenClaims:
    if claims.get("type") != expected_type:
        raise InvalidToken(f"wrong token type, expected {expected_type}")
    sub, jti, exp, iat = claims.get("sub"), claims.get("jti"), claims.get("exp"), claims.get("iat")
    sid = claims.get("sid")
    if not isinstance(sub, str) or not _USER_ID.match(sub):
        raise InvalidToken("bad subject")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 64:
        raise InvalidToken("bad token id")
    if not isinstance(sid, str) or not 8 <= len(sid) <= 64:
        raise InvalidToken("bad session id")
    if type(exp) is not int or type(iat) is not int:
        raise InvalidToken("bad timestamps")
    if iat > time.time() + leeway:  # jose checks nbf and exp, not a future iat
        raise InvalidToken("issued in the future")
    return TokenClaims(
        user_id=int(sub),
        jti=jti,
        session_id=sid,
        token_type=expected_type,
        issued_at=iat,
        expires_at=exp,
    )
