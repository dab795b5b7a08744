"""Worker liveness as seen through Redis heartbeats.

Each worker process records ``time.time()`` under its name in the sorted set
``folio:workers`` every few seconds; the web process counts the members seen in the last
``HEARTBEAT_TTL`` seconds with one ``ZCOUNT``, whatever else the database holds.
"""

from __future__ import annotations

import time

import redis

HEARTBEATS_KEY = "folio:workers"
HEARTBEAT_TTL = 60


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
