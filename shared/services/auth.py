"""Token life cycle: issue a pair, resolve a bearer token, rotate refresh, end a session.

Every pair issued by one login, and every pair rotated from it, shares a session id
(``sid``). Revocations live in Redis, per token (``jti``) and per session (``sid``), until
the tokens they cover would be refused anyway; a token is checked against both in one
``EXISTS``. A refresh token is consumed with ``SET NX`` so that two concurrent refreshes
cannot both succeed, and a refresh token presented twice ends its whole session.
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
    new_session_id,
)
from shared.services.users import find_user

REVOKED_PREFIX = "folio:auth:revoked:"
REVOKED_SESSION_PREFIX = "folio:auth:revoked-session:"
# A refresh that was verified just before its session ended issues its pair just after;
# the session's revocation outlives that pair's refresh token by this much spare time.
IN_FLIGHT_SECONDS = 60


def issue_pair(issuer: TokenIssuer, user: User, *, session_id: str | None = None) -> dict[str, Any]:
    """An access and a refresh token in login session ``session_id`` (None: a new session)."""
    sid = new_session_id() if session_id is None else session_id
    return {
        "access_token": issuer.issue(user_id=user.id, token_type=ACCESS, session_id=sid),
        "refresh_token": issuer.issue(user_id=user.id, token_type=REFRESH, session_id=sid),
        "expires_in": issuer.access_ttl,
    }


def verify_token(
    issuer: TokenIssuer, store: redis.Redis, token: str, *, expected_type: TokenType
) -> TokenClaims:
    """Claims of a valid token whose id and session are unrevoked; else ``AuthenticationFailed``."""
    claims = _valid_claims(issuer, token, expected_type=expected_type)
    if _is_revoked(store, claims):
        raise AuthenticationFailed("The token has been revoked.")
    return claims


def _valid_claims(issuer: TokenIssuer, token: str, *, expected_type: TokenType) -> TokenClaims:
    try:
        return issuer.verify(token, expected_type=expected_type)
    except InvalidToken as exc:
        raise AuthenticationFailed(f"The token is invalid: {exc}.") from None


def _is_revoked(store: redis.Redis, claims: TokenClaims) -> bool:
    """Whether the token or its session is revoked, in one round trip."""
    keys = (REVOKED_PREFIX + claims.jti, REVOKED_SESSION_PREFIX + claims.session_id)
    with redis_required("token revocation list"):
        return bool(store.exists(*keys))


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


def end_session(issuer: TokenIssuer, store: redis.Redis, session_id: str) -> None:
    """Revoke every token of a login session, those issued so far and any rotated later.

    The session's newest refresh token was issued by now, so none is accepted beyond a
    full refresh lifetime plus the leeway from now; the revocation lasts that long (and
    ``IN_FLIGHT_SECONDS`` more). Ending a session again extends it, never shortens it.
    """
    ttl = issuer.refresh_ttl + LEEWAY_SECONDS + IN_FLIGHT_SECONDS
    with redis_required("token revocation list"):
        store.set(REVOKED_SESSION_PREFIX + session_id, "1", ex=ttl)


def rotate_refresh(
    session: DbSession, issuer: TokenIssuer, store: redis.Redis, refresh_token: str
) -> dict[str, Any]:
    """A new token pair in the same session for a refresh token, which is revoked in the same step.

    A refresh token that was already used (a replay: stolen, or leaked and raced) ends its
    whole session, so that the pair rotated from it stops working too: whoever holds it,
    thief or owner, has to log in again (refresh token reuse detection).
    """
    claims = _valid_claims(issuer, refresh_token, expected_type=REFRESH)
    if _is_revoked(store, claims) or not revoke(store, claims):
        end_session(issuer, store, claims.session_id)
        raise AuthenticationFailed(
            "The refresh token has been revoked (used before, or its session has ended);"
            " its session is now closed."
        )
    user = token_owner(session, claims)
    return issue_pair(issuer, user, session_id=claims.session_id)


def logout(
    issuer: TokenIssuer, store: redis.Redis, *, user: User, access: TokenClaims,
    refresh_token: str | None = None,
) -> None:  # fmt: skip
    """End the access token's login session: all its tokens, access and refresh, stop working.

    ``refresh_token`` is optional: the session id already covers the session's refresh
    tokens. When sent, it must be the caller's, and the session it belongs to ends too
    (the same one, or another login of the caller). It is checked before anything is
    revoked, so a bad one changes nothing; one that is already revoked (rotated, or a
    repeated logout) is fine.
    """
    sessions = {access.session_id}
    if refresh_token is not None:
        sessions.add(_own_refresh_claims(issuer, refresh_token, user=user).session_id)
    for session_id in sorted(sessions):
        end_session(issuer, store, session_id)
    revoke(store, access)


def _own_refresh_claims(issuer: TokenIssuer, refresh_token: str, *, user: User) -> TokenClaims:
    """Claims of a well-signed refresh token of ``user``, revoked or not; else ``InvalidInput``."""
    try:
        refresh = issuer.verify(refresh_token, expected_type=REFRESH)
    except InvalidToken as exc:
        detail = f"Not a valid refresh token: {exc}."
        raise InvalidInput(detail, {"refresh_token": [detail]}) from None
    if refresh.user_id != user.id:
        detail = "The refresh token belongs to another user."
        raise InvalidInput(detail, {"refresh_token": [detail]})
    return refresh
