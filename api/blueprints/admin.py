"""Operations for admins: queues, workers, job statistics and the cache."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint
from flask.typing import ResponseReturnValue
from kombu.exceptions import OperationalError
from redis import RedisError

from api.auth import admin_required
from api.cache import catalog_cache
from api.extensions import folio
from shared.db import db, utcnow
from shared.errors import DependencyUnavailable
from shared.models import User
from shared.schemas.admin import job_stats_schema, queues_schema, workers_schema
from shared.services.jobs import job_statistics
from shared.services.queues import queue_depths
from shared.services.workers import describe_workers

bp = Blueprint("admin", __name__, url_prefix="/api/admin")
NO_STORE = {"Cache-Control": "no-store"}  # live figures: never reuse an old answer


@bp.get("/queues")
@admin_required
def queues(current_user: User) -> ResponseReturnValue:  # noqa: ARG001
    """Messages waiting in each Celery queue."""
    try:
        depths = queue_depths(folio().broker)
    except RedisError as exc:
        raise DependencyUnavailable("The broker is unavailable; queue depths are unknown.") from exc
    listed = [{"name": name, "depth": depth} for name, depth in depths.items()]
    return queues_schema.dump({"queues": listed}), NO_STORE


@bp.get("/workers")
@admin_required
def workers(current_user: User) -> ResponseReturnValue:  # noqa: ARG001
    """Workers alive now, with the queues they consume and the tasks they run."""
    services = folio()
    try:
        described = describe_workers(services.celery, services.redis)
    except (OperationalError, RedisError, OSError) as exc:
        raise DependencyUnavailable("The broker is unavailable; workers cannot be asked.") from exc
    return workers_schema.dump({"workers": described}), NO_STORE


@bp.get("/jobs/stats")
@admin_required
def job_stats(current_user: User) -> ResponseReturnValue:  # noqa: ARG001
    """Jobs counted by status and type, and the age of the oldest queued job."""
    stats = job_statistics(db.session)
    oldest = stats.oldest_queued_at
    return job_stats_schema.dump({
        "by_status": stats.by_status,
        "by_type": stats.by_type,
        "by_type_and_status": stats.by_type_and_status,
        "oldest_queued_age_seconds": (utcnow() - oldest).total_seconds() if oldest else None,
    }), NO_STORE  # fmt: skip


@bp.post("/cache/clear")
@admin_required
def clear_cache(current_user: User) -> ResponseReturnValue:  # noqa: ARG001
    """Delete every key of the cache but its version (never a key of the main Redis)."""
    return {"removed": catalog_cache().drop("all")}, HTTPStatus.OK
