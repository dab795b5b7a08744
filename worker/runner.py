"""``run_job``: claim a job, run its effect, record how it ended; safe to run twice.

The claim is an atomic check-and-set (only a queued job starts), so a redelivered
message or a duplicate sent by the sweeper finds nothing to do. The effect and the
success are committed together; anything else rolls the effect back first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from sqlalchemy import insert

from shared.broker import send_housekeeping, send_job
from shared.db import DbSession, db
from shared.job_types import DROP_DEAD_CACHE_TASK, JOB_TYPES
from shared.models import Job, JobResultChunk, JobStatus
from shared.services import job_metrics, job_signals, jobs
from shared.services.jobs import Checkpoints, JobCancelled, JobFailed, job_problem
from worker.app import FolioCelery

log = logging.getLogger(__name__)
Handler = Callable[[DbSession, Job, Checkpoints], dict[str, Any]]
MAX_BACKOFF = 60


class JobRun:
    """The checkpoints of one attempt: progress and cancel flags in Redis, result chunks."""

    def __init__(self, job: Job, attempt: int, store: redis.Redis) -> None:
        self.job_id, self.attempt, self.store = job.id, attempt, store
        self.last: dict[str, Any] = {"percent": 0.0, "processed": 0, "total": None,
                                     "message": "starting"}  # fmt: skip
        self.seq = 0

    def progress(
        self, processed: int, total: int, message: str, *, percent: float | None = None
    ) -> None:
        if percent is None:
            percent = 100.0 * processed / total if total else 100.0
        percent = max(self.last["percent"], round(percent, 1))  # never backwards in one attempt
        self.last = {"percent": percent, "processed": processed, "total": total,
                     "message": message}  # fmt: skip
        if job_signals.write_progress(self.store, self.job_id, attempt=self.attempt,
                                      progress=self.last):  # fmt: skip
            raise JobCancelled

    def final(self, message: str) -> dict[str, Any]:
        """The progress to store as the attempt ends (complete when it succeeded)."""
        if message != "done":
            return self.last | {"message": message}
        total = self.last["total"]
        processed = total if total is not None else self.last["processed"]
        return {"percent": 100.0, "processed": processed, "total": total, "message": message}

    def store_chunk(self, data: bytes) -> None:
        """Committed on its own connection at once: a result file is not held in memory."""
        row = {"job_id": self.job_id, "attempt": self.attempt, "seq": self.seq, "data": data}
        with db.engine.begin() as connection:
            connection.execute(insert(JobResultChunk.__table__), row)
        self.seq += 1


def run_job(celery: FolioCelery, job_id: str, handler: Handler) -> str | None:
    """Run one attempt of ``job_id``; returns the status it left the job in."""
    session, settings = db.session, celery.settings
    job = jobs.claim(session, job_id)
    attempt = job.attempts if job is not None else 0  # read before commit expires the row
    session.commit()
    if job is None:
        log.info("job %s is not queued (a duplicate delivery, or cancelled): skipped", job_id)
        return None
    log.info("job %s (%s) attempt %d started", job_id, job.type, attempt)
    started = time.monotonic()
    with _heartbeat(celery.redis, job_id, interval=settings.job_stale_after / 4):
        outcome = _attempt(celery, job, attempt, handler)
    if outcome in JobStatus.TERMINAL:  # before waiting clients are told (a scrape then sees it)
        job_metrics.record_duration(celery.redis, job.type, outcome, time.monotonic() - started)
    changed_catalog = outcome == JobStatus.SUCCEEDED and JOB_TYPES[job.type].changes_catalog
    if changed_catalog:
        # Before waiting clients hear; a client polling in the moment between the commit
        # and this bump is covered by the web, which bumps for unmarked changes (settle).
        celery.catalog_cache.bump(changes=[job_id])
    if outcome in JobStatus.TERMINAL:
        job_signals.notify_finished(celery.redis, job_id)  # first: a client is waiting
        job_signals.forget(celery.redis, [job_id])
    if changed_catalog:
        send_housekeeping(celery, DROP_DEAD_CACHE_TASK)  # the entries it made unreachable
    log.info("job %s attempt %d ended: %s", job_id, attempt, outcome or "claim lost")
    return outcome


def _attempt(celery: FolioCelery, job: Job, attempt: int, handler: Handler) -> str | None:
    session, settings = db.session, celery.settings
    run = JobRun(job, attempt, celery.redis)
    try:
        result = handler(session, job, run)
        outcome = jobs.succeed(session, job, attempt=attempt, result=result,
                               progress=run.final("done"), settings=settings)  # fmt: skip
        if outcome == JobStatus.SUCCEEDED:
            session.commit()
            return outcome
        session.rollback()
        if outcome is None:  # the sweeper gave the job to another run: leave it alone
            return None
        raise JobCancelled
    except JobCancelled:
        session.rollback()
        ended = jobs.end(session, job, attempt=attempt, status=JobStatus.CANCELLED,
                         settings=settings, progress=run.final("cancelled"))  # fmt: skip
        session.commit()
        return JobStatus.CANCELLED if ended else None
    except JobFailed as exc:
        session.rollback()
        ended = jobs.end(session, job, attempt=attempt, status=JobStatus.FAILED,
                         settings=settings, error=exc.problem,
                         progress=run.final("failed"))  # fmt: skip
        session.commit()
        return JobStatus.FAILED if ended else None
    except Exception as exc:  # any other error: logged, retried, failed on the last attempt
        session.rollback()
        log.exception("job %s attempt %d raised", job.id, attempt)
        return _after_error(celery, job, attempt, exc)


def _after_error(celery: FolioCelery, job: Job, attempt: int, exc: Exception) -> str | None:
    session, settings = db.session, celery.settings
    error = job_problem(
        job.id, "job-failed",
        f"Attempt {attempt} of {settings.job_max_attempts} failed with an unexpected error "
        f"({type(exc).__name__}); it has been logged.",
    )  # fmt: skip
    outcome = jobs.requeue_or_fail(session, job, attempt=attempt, error=error, settings=settings)
    session.commit()
    if outcome == JobStatus.QUEUED:
        backoff = min(2 ** (attempt - 1), MAX_BACKOFF)
        # With the request id of the submit: the next attempt's log lines carry it too.
        sent = send_job(celery, JOB_TYPES[job.type], job.id, countdown=backoff,
                        request_id=job.request_id)  # fmt: skip
        if not sent:
            jobs.mark_unsent(session, job.id)
            session.commit()
    return outcome


@contextmanager
def _heartbeat(store: redis.Redis, job_id: str, *, interval: float) -> Iterator[None]:
    """Beat for ``job_id`` from a thread while the block runs (long steps included)."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            job_signals.beat(store, job_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
