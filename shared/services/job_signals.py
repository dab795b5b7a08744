"""Live job state in Redis: progress, heartbeats, cancel flags and "finished" wake-ups.

The jobs table stays the truth; this is what changes too often, or must travel too fast,
for the database: progress every few hundred rows, a heartbeat every few seconds, a
cancel noticed between two batches, a waiting request woken the moment its job ends.
Everything here is best effort: when Redis is down a job still runs and ends in the
database, a client sees less progress, and a waiting request returns at its deadline.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import redis

log = logging.getLogger(__name__)
PROGRESS_PREFIX = "folio:jobs:progress:"
CANCEL_PREFIX = "folio:jobs:cancel:"
DONE_CHANNEL_PREFIX = "folio:jobs:done:"
HEARTBEATS_KEY = "folio:jobs:heartbeats"
LIVE_TTL = 86400  # seconds progress and cancel flags outlive a job that never ends


def write_progress(
    store: redis.Redis, job_id: str, *, attempt: int, progress: dict[str, Any]
) -> bool:
    """Publish this attempt's progress (a heartbeat too); True if a cancel is flagged.

    One round trip per checkpoint: the cancel flag is read in the same pipeline.
    """
    try:
        with store.pipeline(transaction=False) as pipe:
            pipe.set(PROGRESS_PREFIX + job_id, json.dumps([attempt, progress]), ex=LIVE_TTL)
            pipe.zadd(HEARTBEATS_KEY, {job_id: time.time()})
            pipe.exists(CANCEL_PREFIX + job_id)
            return bool(pipe.execute()[-1])
    except redis.RedisError as exc:
        log.warning("progress of job %s not published: %s", job_id, exc)
        return False


def read_progress(store: redis.Redis, job_id: str, *, attempt: int) -> dict[str, Any] | None:
    """The progress of ``attempt`` of a running job, if its worker published any."""
    try:
        raw = store.get(PROGRESS_PREFIX + job_id)
    except redis.RedisError:
        return None
    if not raw:
        return None
    seen_attempt, progress = json.loads(str(raw))
    return progress if seen_attempt == attempt else None


def beat(store: redis.Redis, job_id: str) -> None:
    """The running job ``job_id`` is alive."""
    try:
        store.zadd(HEARTBEATS_KEY, {job_id: time.time()})
    except redis.RedisError as exc:
        log.warning("heartbeat of job %s not recorded: %s", job_id, exc)


def last_heartbeats(store: redis.Redis, job_ids: list[str]) -> list[float | None]:
    """When each job last beat (``None``: never, or Redis lost it). Raises ``RedisError``."""
    if not job_ids:
        return []
    return [None if score is None else float(score)
            for score in store.zmscore(HEARTBEATS_KEY, job_ids)]  # fmt: skip


def start_clocks(store: redis.Redis, job_ids: list[str]) -> None:
    """Running jobs without a heartbeat (Redis restarted empty): count from now.

    Their workers may well be alive and beat again within seconds; judging them by
    their start time would take every long job from a healthy worker.
    """
    if job_ids:
        store.zadd(HEARTBEATS_KEY, dict.fromkeys(job_ids, time.time()), nx=True)


def forget(store: redis.Redis, job_ids: Iterable[str]) -> None:
    """Drop the live state of jobs that ended."""
    ids = list(job_ids)
    if not ids:
        return
    try:
        with store.pipeline(transaction=False) as pipe:
            pipe.zrem(HEARTBEATS_KEY, *ids)
            pipe.delete(*(PROGRESS_PREFIX + i for i in ids), *(CANCEL_PREFIX + i for i in ids))
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("live state of %d jobs not dropped: %s", len(ids), exc)


def flag_cancel(store: redis.Redis, job_id: str) -> None:
    """Tell the worker running ``job_id`` to stop at its next checkpoint (best effort)."""
    try:
        store.set(CANCEL_PREFIX + job_id, "1", ex=LIVE_TTL)
    except redis.RedisError as exc:
        log.warning("cancel flag of job %s not set; the worker reads the row: %s", job_id, exc)


def notify_finished(store: redis.Redis, job_id: str) -> None:
    """Wake the requests waiting for ``job_id`` (``GET /api/jobs/{id}?wait=N``)."""
    try:
        store.publish(DONE_CHANNEL_PREFIX + job_id, "1")
    except redis.RedisError as exc:
        log.warning("waiters of job %s not woken; they return at their deadline: %s", job_id, exc)


class FinishWaiter:
    """Subscribe *before* reading the job, so that an end in between is not missed."""

    def __init__(self, store: redis.Redis, job_id: str) -> None:
        self.pubsub: Any = None
        try:
            pubsub = store.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(DONE_CHANNEL_PREFIX + job_id)
            self.pubsub = pubsub
        except redis.RedisError as exc:
            log.warning("cannot wait for job %s: %s", job_id, exc)

    def wait(self, timeout: float) -> None:
        """Return when the job ends or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        if self.pubsub is None:
            return
        try:
            while (left := deadline - time.monotonic()) > 0:
                if self.pubsub.get_message(timeout=left) is not None:
                    return
        except redis.RedisError as exc:
            log.warning("waiting for a job ended early: %s", exc)

    def close(self) -> None:
        if self.pubsub is not None:
            with contextlib.suppress(redis.RedisError):  # closing a dead connection
                self.pubsub.close()
