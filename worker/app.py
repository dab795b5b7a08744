"""``create_celery(settings)``: the worker's Celery app, built from the web's settings.

The worker has its own small Flask app for the database session (Flask-SQLAlchemy needs
an app context): it never imports ``api``. Tasks run inside that app context.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import redis
from celery import Celery, Task, bootsteps
from celery.signals import worker_process_init
from flask import Flask

from shared import models  # noqa: F401 - registers the tables
from shared.broker import celery_config
from shared.config import Settings
from shared.cursor import CursorCodec, book_cursors
from shared.db import db, init_db
from shared.job_types import (
    FLUSH_VIEWS_TASK,
    HOUSEKEEPING_TASKS,
    MAINTENANCE_QUEUE,
    PURGE_EXPIRED_TASK,
    RECOVER_JOBS_TASK,
    WARM_CACHE_TASK,
)
from shared.redis_client import make_redis
from shared.services.catalog_cache import CACHE_PREFIX, CatalogCache, JsonRedisCache, cache_client
from shared.services.catalog_reads import POPULAR
from shared.services.workers import HEARTBEAT_TTL, forget_worker, record_heartbeat
from worker.logs import JobRequest, init_logging

log = logging.getLogger(__name__)
WORKER_HEARTBEAT_INTERVAL = HEARTBEAT_TTL / 4


class FolioCelery(Celery):
    """Celery with the settings, database app and Redis client of this process."""

    settings: Settings
    flask_app: Flask
    catalog_cache: CatalogCache
    cursors: CursorCodec
    redis: redis.Redis


def create_celery(settings: Settings) -> FolioCelery:
    flask_app = Flask("folio-worker")
    init_db(flask_app, settings)

    class FlaskTask(Task):
        Request = JobRequest

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with flask_app.app_context():
                return self.run(*args, **kwargs)

    celery = FolioCelery("folio", task_cls=FlaskTask, set_as_current=True)
    celery.conf.update(celery_config(settings))
    celery.conf.update(
        task_routes={name: {"queue": MAINTENANCE_QUEUE} for name in HOUSEKEEPING_TASKS},
        beat_schedule=_beat_schedule(settings),
    )
    celery.settings, celery.flask_app = settings, flask_app
    init_logging(celery)
    celery.redis = make_redis(settings.redis_url)
    cache_store = cache_client(settings.cache_redis_url)
    backend = (JsonRedisCache(host=cache_store, key_prefix=CACHE_PREFIX)
               if settings.cache_enabled else None)  # fmt: skip
    ttls = {POPULAR: settings.popular_flush_interval}
    celery.catalog_cache = CatalogCache(backend, cache_store, ttl=settings.cache_ttl, ttls=ttls)
    celery.cursors = book_cursors(settings.secret_key)
    celery.steps["worker"].add(WorkerHeartbeat)

    def dispose_inherited_pool(**_: Any) -> None:
        """A forked child must not reuse its parent's database connections."""
        with flask_app.app_context():
            db.engine.dispose(close=False)

    worker_process_init.connect(dispose_inherited_pool, weak=False)
    from worker.tasks import books, cache, maintenance  # noqa: PLC0415 - tasks need the app

    books.register(celery)
    cache.register(celery)
    maintenance.register(celery)
    return celery


def _beat_schedule(settings: Settings) -> dict[str, Any]:
    """Housekeeping; ``expires`` drops runs that waited longer than their interval."""
    every = {
        "recover-jobs": (RECOVER_JOBS_TASK, settings.job_sweep_interval),
        "purge-expired": (PURGE_EXPIRED_TASK, settings.job_purge_interval),
        "flush-views": (FLUSH_VIEWS_TASK, settings.popular_flush_interval),
        "warm-cache": (WARM_CACHE_TASK, settings.cache_warm_interval),  # 0: switched off
    }
    return {
        name: {"task": task, "schedule": float(seconds), "options": {"expires": float(seconds)}}
        for name, (task, seconds) in every.items()
        if seconds > 0
    }


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Record this worker in ``folio:workers`` so that ``/health/ready`` can count it."""

    requires: ClassVar = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.timer_ref: Any = None

    def start(self, worker: Any) -> None:
        self.beat(worker)
        self.timer_ref = worker.timer.call_repeatedly(
            WORKER_HEARTBEAT_INTERVAL, self.beat, (worker,), priority=10
        )

    def stop(self, worker: Any) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
        try:
            forget_worker(worker.app.redis, worker.hostname)
        except redis.RedisError:
            log.warning("could not remove worker %s from the heartbeats", worker.hostname)

    def beat(self, worker: Any) -> None:
        try:
            record_heartbeat(worker.app.redis, worker.hostname)
        except redis.RedisError as exc:
            log.warning("worker heartbeat not recorded: %s", exc)
