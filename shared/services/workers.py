"""Worker liveness as seen through Redis heartbeats, and what live workers are doing.

Each worker process records ``time.time()`` under its name in the sorted set
``folio:workers`` every few seconds; the web process counts the members seen in the last
``HEARTBEAT_TTL`` seconds with one ``ZCOUNT``, whatever else the database holds.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, cast

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from shared.job_types import JOB_TASK_PREFIX

HEARTBEATS_KEY = "folio:workers"
HEARTBEAT_TTL = 60
INSPECT_TIMEOUT = 1.0  # seconds an admin waits for workers to answer a broadcast


def record_heartbeat(store: redis.Redis, worker: str, *, now: float | None = None) -> None:
    """Mark ``worker`` alive now, and forget workers silent for ten times the window."""
    now = time.time() if now is None else now
    with store.pipeline() as pipe:
        pipe.zadd(HEARTBEATS_KEY, {worker: now})
        pipe.zremrangebyscore(HEARTBEATS_KEY, "-inf", now - 10 * HEARTBEAT_TTL)
        pipe.execute()


def count_live_workers(store: redis.Redis, *, now: float | None = None) -> int:
    """Workers whose last heartbeat is younger than ``HEARTBEAT_TTL`` seconds."""
    now = time.time() if now is None else now
    return int(store.zcount(HEARTBEATS_KEY, now - HEARTBEAT_TTL, "+inf"))


def forget_worker(store: redis.Redis, worker: str) -> None:
    """``worker`` shut down cleanly: stop counting it at once."""
    store.zrem(HEARTBEATS_KEY, worker)


def live_workers(store: redis.Redis, *, now: float | None = None) -> dict[str, float]:
    """Each worker seen in the last ``HEARTBEAT_TTL`` seconds, with its last heartbeat."""
    now = time.time() if now is None else now
    seen = store.zrangebyscore(HEARTBEATS_KEY, now - HEARTBEAT_TTL, "+inf", withscores=True)
    return {str(name): float(score) for name, score in cast(list[tuple[Any, Any]], seen)}


def describe_workers(
    celery: Celery, store: redis.Redis, *, timeout: float = INSPECT_TIMEOUT
) -> list[dict[str, Any]]:
    """The workers that are alive (a recent heartbeat, as ``/health/ready`` counts them),
    with their last heartbeat, queues and running tasks.

    One broadcast to those workers asks for their queues and running tasks and waits for
    their answers, at most ``timeout`` seconds per question; a worker that does not
    answer in time (busy main process, lost message) shows ``None`` for those.
    """
    heartbeats = live_workers(store)
    if not heartbeats:
        return []
    queues, active = _ask_workers(celery, sorted(heartbeats), timeout=timeout)
    return [
        {
            "name": name,
            "queues": sorted(q["name"] for q in queues[name]) if name in queues else None,
            "active": [_task(t) for t in active[name]] if name in active else None,
            "last_heartbeat": dt.datetime.fromtimestamp(heartbeats[name], dt.UTC),
        }
        for name in sorted(heartbeats)
    ]


def _ask_workers(
    celery: Celery, names: list[str], *, timeout: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Queues and active tasks of the workers ``names``, by name.

    Asked again once on a connection error: the first use of a pooled broker connection
    after a broker restart fails, and the second, on a fresh connection, is the answer.
    """
    try:
        return _broadcast(celery, names, timeout=timeout)
    except (OperationalError, redis.ConnectionError):
        return _broadcast(celery, names, timeout=timeout)


def _broadcast(
    celery: Celery, names: list[str], *, timeout: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    inspect = celery.control.inspect(destination=names, timeout=timeout, limit=len(names))
    return inspect.active_queues() or {}, inspect.active() or {}


def _task(task: dict[str, Any]) -> dict[str, Any]:
    args = task.get("args") or []
    job_id = args[0] if task.get("name", "").startswith(JOB_TASK_PREFIX) and args else None
    return {"task_id": task.get("id"), "task": task.get("name"), "job_id": job_id}
