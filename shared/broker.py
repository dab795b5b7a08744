"""Celery settings shared by web and worker, and the one way to hand a job to the broker.

The web process builds a producer-only Celery app from the same settings as the worker
and sends by task name: it never imports ``worker``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from kombu.exceptions import KombuError
from redis import RedisError

from shared.config import VISIBILITY_TIMEOUT, Settings
from shared.job_types import DEFAULT_QUEUE, MAINTENANCE_QUEUE, QUEUES, JobType

log = logging.getLogger(__name__)
# One quick reconnect (a pooled connection may be stale after a broker restart), then
# give up: the job row is committed, and the sweeper sends it once the broker is back.
BROKER_SOCKET_TIMEOUT = 3  # seconds
# The task header that carries the id of the HTTP request that caused a job (its logs).
REQUEST_ID_HEADER = "folio_request_id"
_SEND_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def celery_config(settings: Settings) -> dict[str, Any]:
    """The reliability settings of ``../shared/PITFALLS.md``, in one place."""
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 2,
        "broker_transport_options": {
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "socket_connect_timeout": 2,
            # A broker that accepts connections but never answers (a failover, a paused
            # host) would hold a publish, and the request sending it, forever. Workers
            # are unaffected: their BRPOP answers within its own 1 s timeout.
            "socket_timeout": BROKER_SOCKET_TIMEOUT,
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # Job state lives in the jobs table; Celery's results would only duplicate it.
        "task_ignore_result": True,
        # A message is acknowledged after its task ran, and a worker that dies mid-task
        # gives it back: tasks must be (and are) safe to run twice.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.job_time_limit,
        "task_time_limit": settings.job_time_limit + 60,
        "task_default_queue": DEFAULT_QUEUE,
        "task_queues": [Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
        "worker_concurrency": settings.worker_concurrency,
        "worker_send_task_events": False,
        "timezone": "UTC",
        "enable_utc": True,
    }


def make_producer(settings: Settings) -> Celery:
    """A Celery app that only sends (the web process)."""
    app = Celery("folio", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def send_housekeeping(celery: Celery, task_name: str) -> bool:
    """Send a housekeeping task (no job row) to the maintenance queue; False if not sent.

    Only for work that is safe to lose: the next beat run or expiry does it anyway.
    """
    try:
        celery.send_task(task_name, queue=MAINTENANCE_QUEUE, retry=False)
    except (KombuError, RedisError, OSError) as exc:
        log.warning("broker unavailable, %s not sent: %s", task_name, exc)
        return False
    return True


def send_job(
    celery: Celery,
    job_type: JobType,
    job_id: str,
    *,
    countdown: float | None = None,
    request_id: str | None = None,
) -> bool:
    """Hand ``job_id`` to its queue; False when the broker cannot take it now."""
    try:
        celery.send_task(
            job_type.task_name,
            args=[job_id],
            queue=job_type.queue,
            countdown=countdown,
            headers={REQUEST_ID_HEADER: request_id} if request_id else None,
            retry=True,
            retry_policy=_SEND_RETRY,
        )
    except (KombuError, RedisError, OSError) as exc:
        log.warning("broker unavailable, job %s stays queued for the sweeper: %s", job_id, exc)
        return False
    return True
