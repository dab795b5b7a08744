"""Registration, login, token refresh and logout."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from api.auth import current_token_claims, token_required
from api.extensions import folio
from api.http import load_json, no_content
from shared.db import db
from shared.models import User
from shared.schemas.user import (
    login_schema,
    logout_schema,
    refresh_schema,
    register_schema,
    token_pair_schema,
    user_schema,
)
from shared.services import auth, users

bp = Blueprint("auth", __name__, url_prefix="/api/auth")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@bp.post("/register")
def register() -> ResponseReturnValue:
    """Create an account."""
    data = load_json(register_schema)
    user = users.register_user(db.session, folio().passwords, **data)
    db.session.commit()
    location = url_for("users.get_user", user_id=user.id)
    return user_schema.dump(user), HTTPStatus.CREATED, {"Location": location}


@bp.post("/login")
def login() -> ResponseReturnValue:
    """Exchange email and password for an access and a refresh token: a new login session."""
    data = load_json(login_schema)
    services = folio()
    user = users.authenticate(db.session, services.passwords, **data)
    db.session.commit()  # a rehashed password is saved
    return token_pair_schema.dump(auth.issue_pair(services.tokens, user)), NO_STORE


@bp.post("/refresh")
def refresh() -> ResponseReturnValue:
    """Rotate a refresh token: a new pair in the same session; the old token is revoked.

    Presenting a refresh token that was already used ends its whole session (a replay).
    """
    data = load_json(refresh_schema)
    services = folio()
    pair = auth.rotate_refresh(db.session, services.tokens, services.redis, data["refresh_token"])
    return token_pair_schema.dump(pair), NO_STORE


@bp.post("/logout")
@token_required
def logout(current_user: User) -> ResponseReturnValue:
    """End the access token's login session, refresh tokens included.

    An optional body ``{"refresh_token"}`` (the caller's own) ends that token's session too.
    """
    # get_data, not content_length: a chunked body has no Content-Length.
    data = load_json(logout_schema) if request.get_data(cache=True) else {}
    services = folio()
    auth.logout(
        services.tokens, services.redis, user=current_user, access=current_token_claims(),
        refresh_token=data.get("refresh_token"),
    )  # fmt: skip
    return no_content()
