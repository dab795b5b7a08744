"""Operations for admins: the cache (queues and workers follow with the operations work)."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint
from flask.typing import ResponseReturnValue

from api.auth import admin_required
from api.cache import catalog_cache
from shared.models import User

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


@bp.post("/cache/clear")
@admin_required
def clear_cache(current_user: User) -> ResponseReturnValue:  # noqa: ARG001
    """Delete every key of the cache but its version (never a key of the main Redis)."""
    return {"removed": catalog_cache().drop("all")}, HTTPStatus.OK
