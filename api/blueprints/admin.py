"""Operations for admins: the cache (queues and workers follow with the operations work)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from api.auth import admin_required
from api.cache import catalog_cache
from shared.models import User
from shared.services.catalog_cache import SCOPES

bp = Blueprint("admin", __name__, url_prefix="/api/admin")
ALL = SCOPES[-1]


@bp.post("/cache/clear")
@admin_required
def clear_cache(current_user: User) -> ResponseReturnValue:  # noqa: ARG001
    """Delete every entry of the cache (never the Redis of the broker or the limits)."""
    return {"removed": catalog_cache().drop(ALL)}
