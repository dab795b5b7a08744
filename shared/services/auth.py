"""Token life cycle: issue a pair, resolve a bearer token, rotate refresh, revoke.

Revocations live in Redis until the token would be refused anyway; a refresh token
is consumed with ``SET NX`` so that two concurrent refreshes cannot both succeed.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from shared.db import DbSession
from shared.errors import AuthenticationFailed, InvalidInput
from shared.models import User
from shared.redis_client import redis_required
from shared.security.tokens import (
    ACCESS,
    LEEWAY_SECONDS,
    REFRESH,
    InvalidToken,
    TokenClaims,
    TokenIssuer,
    TokenType,
)
from shared.services.users import find_user

REVOKED_PREFIX = "folio:auth:revoked:"


def issue_pair(issuer: TokenIssuer, user: User) -> dict[str, Any]:
    return {
        "access_token": issuer.issue(user_id=user.id, token_type=ACCESS),
        "refresh_token": issuer.issue(user_id=user.id, token_type=REFRESH),
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


def token_owner(session: DbSession, claims: TokenClaims) -> User:
    """The live user a token was issued to (role and tier fresh from the database).

    A token older than its account belongs to an earlier account with the same id (a
    restored backup, a reset sequence) and is refused.
    """
    user = find_user(session, claims.user_id)
    if user is None:
        raise AuthenticationFailed("The token's user no longer exists.")
    if claims.issued_at + LEEWAY_SECONDS < user.created_at.timestamp():
        raise AuthenticationFailed("The token was issued before its user existed.")
    return user


def user_for_token(session: DbSession, issuer: TokenIssuer, store: redis.Redis, token: str) -> User:
    """The live user behind an access token (role and tier fresh from the database)."""
    claims = verify_token(issuer, store, token, expected_type=ACCESS)
    return token_owner(session, claims)


def revoke(store: redis.Redis, claims: TokenClaims) -> bool:
    """Revoke a token for as long as it would be accepted; False when it was already."""
    ttl = max(claims.accepted_until - int(time.time()), 0) + 1
    with redis_required("token revocation list"):
        return bool(store.set(REVOKED_PREFIX + claims.jti, "1", ex=ttl, nx=True))


def rotate_refresh(
    session: DbSession, issuer: TokenIssuer, store: redis.Redis, refresh_token: str
) -> dict[str, Any]:
    """A new token pair for a refresh token, which is revoked in the same step."""
    claims = verify_token(issuer, store, refresh_token, expected_type=REFRESH)
    user = token_owner(session, claims)
    if not revoke(store, claims):
        raise AuthenticationFailed("The token has been revoked.")
    return issue_pair(issuer, user)


def logout(
    issuer: TokenIssuer, store: redis.Redis, *, user: User, access: TokenClaims,
    refresh_token: str | None = None,
) -> None:  # fmt: skip
    """Revoke the access token and, when given, the caller's refresh token.

    The refresh token is checked before anything is revoked, so a bad one changes
    nothing; one that is already revoked (rotated, or a repeated logout) is fine.
    """
    refresh = None
    if refresh_token is not None:
        try:
            refresh = issuer.verify(refresh_token, expected_type=REFRESH)
        except InvalidToken as exc:
            detail = f"Not a valid refresh token: {exc}."
            raise InvalidInput(detail, {"refresh_token": [detail]}) from None
        if refresh.user_id != user.id:
            detail = "The refresh token belongs to another user."
            raise InvalidInput(detail, {"refresh_token": [detail]})
    revoke(store, access)
    if refresh is not None:
        revoke(store, refresh)
