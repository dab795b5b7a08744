"""The cache's work on workers: the ``cache.*`` job types, warming, dead entries, views.

The job types (``cache.warm``, ``cache.invalidate``, admin only) and beat's housekeeping
call the same code: a job is the same work with a row a client can follow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError

from shared.db import DbSession, db
from shared.errors import NotFound
from shared.job_types import (
    CACHE_INVALIDATE,
    CACHE_WARM,
    DROP_DEAD_CACHE_TASK,
    FLUSH_VIEWS_TASK,
    WARM_CACHE_TASK,
)
from shared.models import Job
from shared.services import catalog_reads, popular
from shared.services.catalog_cache import POPULAR_READ
from shared.services.catalog_reads import CatalogRead, Rendered
from shared.services.jobs import Checkpoints
from worker.app import FolioCelery
from worker.runner import run_job

log = logging.getLogger(__name__)


def register(celery: FolioCelery) -> None:
    cache, settings = celery.catalog_cache, celery.settings
    reader = catalog_reads.Reader(db.session, celery.cursors, cache)

    def render(read: CatalogRead) -> Rendered | None:
        """A read's response, or ``None`` when it no longer answers 200 (a deleted book)."""
        try:
            return catalog_reads.render(catalog_reads.compute(reader, read))
        except (ValidationError, NotFound):
            return None
        finally:
            db.session.rollback()  # end the read transaction

    def warm() -> dict[str, Any]:
        keys = cache.warm(render, top=settings.cache_warm_top)
        return {"warmed": len(keys), "keys": keys}

    def warm_job(_: DbSession, __: Job, ___: Checkpoints) -> dict[str, Any]:
        return warm()

    def invalidate_job(_: DbSession, job: Job, __: Checkpoints) -> dict[str, Any]:
        scope = job.params["scope"]
        return {"scope": scope, "removed": cache.drop(scope)}

    @celery.task(name=CACHE_WARM.task_name)
    def warm_cache_job(job_id: str) -> Any:
        return run_job(celery, job_id, warm_job)

    @celery.task(name=CACHE_INVALIDATE.task_name)
    def invalidate_cache_job(job_id: str) -> Any:
        """Deleting entries twice (a retry) removes nothing more: safe to run again."""
        return run_job(celery, job_id, invalidate_job)

    @celery.task(name=WARM_CACHE_TASK)
    def warm_cache() -> dict[str, Any]:
        """Beat: recompute the hottest reads for the current catalog version."""
        with _skipped_while_redis_is_down("cache warming") as skipped:
            return warm()
        return skipped

    @celery.task(name=DROP_DEAD_CACHE_TASK)
    def drop_dead_cache() -> dict[str, Any]:
        """After an import: delete the entries no version can reach any more."""
        with _skipped_while_redis_is_down("dead cache entries") as skipped:
            return {"removed": cache.drop_dead()}
        return skipped

    @celery.task(name=FLUSH_VIEWS_TASK)
    def flush_views() -> dict[str, Any]:
        """Beat: add the views counted in Redis to the database, refresh the popular list."""
        with _skipped_while_redis_is_down("views flush") as skipped:
            batch = popular.take_pending(celery.redis)
            if batch is None:
                return {"books": 0, "views": 0}
            try:
                popular.add_views(db.session, batch)
                db.session.commit()
            except IntegrityError:  # this batch was added before: only forget it
                db.session.rollback()
                popular.forget(celery.redis, batch)
                return {"books": 0, "views": 0}
            popular.forget(celery.redis, batch)
            popular_list = render(POPULAR_READ)
            cache.store(POPULAR_READ, popular_list, version=cache.version())
            return {"books": len(batch.counts), "views": sum(batch.counts.values())}
        return skipped


@contextmanager
def _skipped_while_redis_is_down(what: str) -> Iterator[dict[str, Any]]:
    """Housekeeping runs again at its next interval: an outage is a warning, no traceback."""
    skipped: dict[str, Any] = {"skipped": "redis unavailable"}
    try:
        yield skipped
    except redis.RedisError as exc:
        log.warning("%s skipped, Redis unavailable: %s", what, exc)
