"""Users: the caller, admin changes, and a user's books."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from api.auth import admin_required, token_required
from api.cache import catalog_changed, catalog_read
from api.http import load_json, no_content
from shared.db import db
from shared.models import User
from shared.schemas.user import user_schema, user_update_schema
from shared.services import users
from shared.services.catalog_reads import BOOKS_LIST

bp = Blueprint("users", __name__, url_prefix="/api/users")


@bp.get("/me")
@token_required
def me(current_user: User) -> ResponseReturnValue:
    """The authenticated user."""
    return user_schema.dump(current_user)


@bp.get("/<id:user_id>")
@token_required
def get_user(user_id: int, current_user: User) -> ResponseReturnValue:
    """One user: yourself, or anyone for an admin."""
    user = users.readable_user(db.session, actor=current_user, user_id=user_id)
    return user_schema.dump(user)


@bp.patch("/<id:user_id>")
@admin_required
def update_user(user_id: int, current_user: User) -> ResponseReturnValue:  # noqa: ARG001
    """Change a user's role or tier (admin)."""
    changes = load_json(user_update_schema)
    user = users.update_user(db.session, user_id, changes)
    db.session.commit()
    return user_schema.dump(user)


@bp.delete("/<id:user_id>")
@admin_required
def delete_user(user_id: int, current_user: User) -> ResponseReturnValue:  # noqa: ARG001
    """Delete a user (admin); their books stay, without an owner."""
    users.delete_user(db.session, user_id)
    db.session.commit()
    catalog_changed()  # their books lost their owner
    return no_content()


@bp.get("/<id:user_id>/books")
def user_books(user_id: int) -> ResponseReturnValue:
    """A user's books, listed like ``GET /api/books``."""
    users.get_user(db.session, user_id)
    return catalog_read(BOOKS_LIST, owner_id=user_id)
