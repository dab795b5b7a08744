"""Bearer authentication for views: ``@token_required`` and ``@admin_required``."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request

from api.extensions import folio
from shared.db import db
from shared.errors import AuthenticationFailed, PermissionDenied
from shared.models import User
from shared.security.tokens import ACCESS, TokenClaims
from shared.services import auth

F = TypeVar("F", bound=Callable[..., Any])


def bearer_token() -> str:
    """The token of an ``Authorization: Bearer`` header, or ``AuthenticationFailed``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header.strip():
        raise AuthenticationFailed("This route needs an Authorization: Bearer <token> header.")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("The Authorization header must use the Bearer scheme.")
    return token.strip()


def _authenticate() -> None:
    """Verify this request's bearer token once; the user is loaded fresh from the database."""
    if "current_user" in g:
        return
    services = folio()
    claims = auth.verify_token(
        services.tokens, services.redis, bearer_token(), expected_type=ACCESS
    )
    user = auth.token_owner(db.session, claims)
    g.token_claims = claims
    g.current_user = user


def current_user() -> User:
    """The authenticated user of this request (loaded once, fresh from the database)."""
    _authenticate()
    return cast(User, g.current_user)


def current_token_claims() -> TokenClaims:
    """The claims of this request's (valid, unrevoked) access token."""
    _authenticate()
    return cast(TokenClaims, g.token_claims)


def token_required(view: F) -> F:
    """Pass the authenticated user to the view as ``current_user``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return view(*args, current_user=current_user(), **kwargs)

    return cast(F, wrapper)


def admin_required(view: F) -> F:
    """Like ``token_required``, and 403 unless the user's role is ``admin``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if not user.is_admin:
            raise PermissionDenied("This route is for admins only.")
        return view(*args, current_user=user, **kwargs)

    return cast(F, wrapper)
