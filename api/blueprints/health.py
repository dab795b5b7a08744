"""Liveness and readiness."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Blueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.errors import problem
from api.extensions import folio
from shared.db import db
from shared.services.workers import count_live_workers

bp = Blueprint("health", __name__, url_prefix="/health")
log = logging.getLogger(__name__)


@bp.get("")
def health() -> ResponseReturnValue:
    """The process serves (touches no dependency)."""
    return {"status": "healthy"}, {"Cache-Control": "no-store"}


@bp.get("/ready")
def ready() -> ResponseReturnValue:
    """The database and Redis answer; workers seen recently are counted."""
    checks: dict[str, Any] = {"database": "ok", "redis": "ok", "workers": 0}
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        log.warning("readiness: database check failed", exc_info=True)
        checks["database"] = "unavailable"
        db.session.rollback()
    try:
        checks["workers"] = count_live_workers(folio().redis)
    except redis.RedisError:
        log.warning("readiness: redis check failed", exc_info=True)
        checks["redis"] = "unavailable"
    failed = [name for name in ("database", "redis") if checks[name] != "ok"]
    if failed:
        detail = f"Not ready: {' and '.join(failed)} unavailable."
        return problem(503, detail, headers={"Retry-After": "5", "Cache-Control": "no-store"},
                       checks=checks)  # fmt: skip
    status = "ready" if checks["workers"] else "degraded"
    return {"status": status, "checks": checks}, {"Cache-Control": "no-store"}
