"""Token life cycle: issue a pair, resolve a bearer token, rotate refresh, revoke.

Revocations live in Redis until the token would have expired anyway; a refresh token
is consumed with ``SET NX`` so that two concurrent refreshes cannot both succeed.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from sqlalchemy.orm import Session

from shared.errors import AuthenticationFailed
from shared.models import User
from shared.redis_client import redis_required
from shared.security.tokens import InvalidToken, TokenClaims, TokenIssuer, TokenType

REVOKED_PREFIX = "folio:auth:revoked:"


def issue_pair(issuer: TokenIssuer, user: User) -> dict[str, Any]:
    return {
        "access_token": issuer.issue(user_id=user.id, token_type="access"),
        "refresh_token": issuer.issue(user_id=user.id, token_type="refresh"),
        "expires_in": issuer.access_ttl,
    }


def verify_token(
    issuer: TokenIssuer, store: redis.Redis, token: str, *, expected_type: TokenType
) -> TokenClaims:
    """Claims of a valid, unrevoked token; ``AuthenticationFailed`` otherwise."""
    try:
        claims = issuer.verify(token, expected_type=expected_type)
    except InvalidToken as exc:
        raise AuthenticationFailed(f"The token is invalid: {exc}.") from None
    with redis_required("token revocation list"):
        revoked = store.exists(REVOKED_PREFIX + claims.jti)
    if revoked:
        raise AuthenticationFailed("The token has been revoked.")
    return claims


def user_for_token(
    session: Session, issuer: TokenIssuer, store: redis.Redis, token: str
) -> User:
    """The live user behind an access token (role and tier fresh from the database)."""
    claims = verify_token(issuer, store, token, expected_type="access")
    user = session.get(User, claims.user_id)
    if user is None:
        raise AuthenticationFailed("The token's user no longer exists.")
    return user


def revoke(store: redis.Redis, claims: TokenClaims) -> bool:
    """Revoke a token until it expires; False when it had been revoked already."""
    ttl = max(claims.expires_at - int(time.time()), 1)
    with redis_required("token revocation list"):
        return bool(store.set(REVOKED_PREFIX + claims.jti, "1", ex=ttl, nx=True))


def rotate_refresh(
    session: Session, issuer: TokenIssuer, store: redis.Redis, refresh_token: str
) -> dict[str, Any]:
    """A new token pair for a refresh token, which is revoked in the same step."""
    claims = verify_token(issuer, store, refresh_token, expected_type="refresh")
    user = session.get(User, claims.user_id)
    if user is None:
        raise AuthenticationFailed("The token's user no longer exists.")
    if not revoke(store, claims):
        raise AuthenticationFailed("The token has been revoked.")
    return issue_pair(issuer, user)
