"""The cache's work on workers: the ``cache.*`` job types, warming, dead entries, views.

The job types (``cache.warm``, ``cache.invalidate``, admin only) and beat's housekeeping
call the same code: a job is the same work with a row a client can follow.
"""

from __future__ import annotations

from typing import Any

import redis
from marshmallow import ValidationError

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
from shared.services.catalog_cache import ALWAYS_WARM
from shared.services.catalog_reads import POPULAR, CatalogRead, Payload
from shared.services.jobs import Checkpoints
from worker.app import FolioCelery
from worker.runner import run_job


def register(celery: FolioCelery) -> None:
    cache, settings = celery.catalog_cache, celery.settings
    reader = catalog_reads.Reader(db.session, celery.cursors, cache)

    def compute(read: CatalogRead) -> Payload | None:
        """A read's payload, or ``None`` when it no longer answers 200 (a deleted book)."""
        try:
            return catalog_reads.compute(reader, read)
        except (ValidationError, NotFound):
            return None

    def warm() -> dict[str, Any]:
        keys = cache.warm(compute, top=settings.cache_warm_top)
        db.session.rollback()  # end the read transaction
        return {"warmed": len(keys), "keys": keys}

    def warm_job(_: DbSession, __: Job, ___: Checkpoints) -> dict[str, Any]:
        return warm()

    def invalidate_job(_: DbSession, job: Job, __: Checkpoints) -> dict[str, Any]:
        scope = job.params["scope"]
        return {"scope": scope, "removed": cache.drop(scope)}

    def refresh_popular() -> None:
        read = next(read for read in ALWAYS_WARM if read.kind == POPULAR)
        try:
            version = cache.version()
        except redis.RedisError:
            return  # the cache is down: readers go to the database anyway
        payload = compute(read)
        db.session.rollback()
        cache.store(read, payload, version=version, ttl=settings.popular_flush_interval)

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
        return warm()

    @celery.task(name=DROP_DEAD_CACHE_TASK)
    def drop_dead_cache() -> dict[str, int]:
        """After bulk changes: delete the entries no version can reach any more."""
        return {"removed": cache.drop_dead()}

    @celery.task(name=FLUSH_VIEWS_TASK)
    def flush_views() -> dict[str, int]:
        """Beat: add the views counted in Redis to the database, refresh the popular list."""
        with popular.flush_lock(celery.redis) as alone:
            if not alone:  # another flush is running; the next one takes these views
                return {"books": 0, "views": 0}
            counts = popular.take_pending(celery.redis)
            popular.add_views(db.session, counts)
            db.session.commit()
            popular.flushed(celery.redis)
        if counts:
            refresh_popular()
        return {"books": len(counts), "views": sum(counts.values())}
