"""Jobs: submit (quota, idempotency), read, list, cancel, retry and forget them; and the
transitions a worker or the sweeper makes (claim, succeed, fail, requeue, recover, purge).

Every transition is one conditional ``UPDATE``: two processes racing for one job (a
cancel and a claim, a late worker and the sweeper) cannot both win. A worker's writes
are fenced by the attempt it claimed, so a run that lost its claim changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

import simplejson
from marshmallow import ValidationError
from sqlalchemy import CursorResult, case, delete, func, select, update
from sqlalchemy.orm import load_only

from shared.config import Settings
from shared.db import DbSession, utcnow
from shared.errors import (
    Conflict,
    Gone,
    IdempotencyKeyReused,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
)
from shared.job_types import BOOKS_IMPORT, JOB_TYPES, JobType
from shared.models import IdempotencyKey, Job, JobResultChunk, JobStatus, User
from shared.models.job import initial_progress
from shared.schemas.job import job_schema

IDEMPOTENCY_TTL = dt.timedelta(hours=24)
CHUNKS_PER_READ = 8
_JOBS = Job.__table__


class JobCancelled(Exception):
    """Raised at a checkpoint of a job whose cancellation was requested."""


class JobFailed(Exception):
    """A definitive failure (bad input, not bad luck): the job fails without a retry."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(problem["detail"])
        self.problem = problem


class Checkpoints(Protocol):
    """What a running job's code may do besides its effect (the worker implements it)."""

    def progress(
        self, processed: int, total: int, message: str, *, percent: float | None = None
    ) -> None:
        """Report progress (``percent`` defaults to processed/total); a cancel checkpoint.

        Raises ``JobCancelled`` once a cancel was requested.
        """

    def store_chunk(self, data: bytes) -> None:
        """Append a piece of the result file (committed at once, outside the effect)."""


@dataclass(frozen=True)
class Submission:
    """The answer to a submit: the job as first answered, and whether this is a replay."""

    job_id: str
    job_type: JobType
    body: dict[str, Any]
    replayed: bool


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    total: int


def job_problem(job_id: str, kind: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A problem-details object for a job's ``error``."""
    title = kind.replace("-", " ").title()
    return {"type": f"/problems/{kind}", "title": title, "status": extra.pop("status", 500),
            "detail": detail, "instance": f"/api/jobs/{job_id}", **extra}  # fmt: skip


# -- submit -------------------------------------------------------------------------------


def job_type_for(name: str, actor: User) -> JobType:
    job_type = JOB_TYPES.get(name)
    if job_type is None:
        raise ValidationError({"type": [f"Must be one of: {', '.join(JOB_TYPES)}."]})
    if job_type.admin_only and not actor.is_admin:
        raise PermissionDenied(f"Only admins may submit {name} jobs.")
    return job_type


def load_params(job_type: JobType, raw: Any, settings: Settings) -> dict[str, Any]:
    """The params validated by the type's schema (a 400 names ``params.<field>``)."""
    storable(raw)
    try:
        params: dict[str, Any] = job_type.params_schema.load(raw)
    except ValidationError as exc:
        raise ValidationError({"params": exc.messages}) from None
    if job_type is BOOKS_IMPORT and len(params["books"]) > settings.import_max_rows:
        message = f"Must have at most {settings.import_max_rows} rows."
        raise ValidationError({"params": {"books": [message]}})
    return params


def storable(value: Any, path: str = "params") -> Any:
    """``value``, refused (a 400 naming the field) if it holds a NUL character.

    PostgreSQL refuses NUL in text, so it must not reach the params column. Numbers stay
    as parsed (exact ``Decimal``s): the worker judges each row's price as it was sent.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            storable(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            storable(item, f"{path}.{index}")
    elif isinstance(value, str) and "\x00" in value:
        raise ValidationError({path: ["Must not contain NUL characters."]})
    return value


def submit_job(
    session: DbSession,
    *,
    owner: User,
    job_type: JobType,
    params: dict[str, Any],
    settings: Settings,
    idempotency_key: str | None = None,
    retry_of: str | None = None,
    request_id: str | None = None,
) -> Submission:
    """Create a queued job (quota checked) or replay the answer given to the same key.

    The owner's row is locked first, so that one user's concurrent submits queue up:
    the quota count and the idempotency lookup then see every earlier submit.
    """
    now = utcnow()
    _lock_user(session, owner.id)
    fingerprint = _fingerprint(job_type.name, params) if idempotency_key is not None else ""
    if idempotency_key is not None:
        replay = _replay(session, owner.id, idempotency_key, fingerprint, now)
        if replay is not None:
            return replay
    _ensure_quota(session, owner, settings)
    job = Job(
        type=job_type.name, status=JobStatus.QUEUED, params=params, progress=initial_progress(),
        attempts=0, cancel_requested=False, owner_id=owner.id, retry_of=retry_of,
        request_id=request_id, created_at=now, enqueued_at=now,
    )  # fmt: skip
    session.add(job)
    session.flush()
    body = job_schema.dump(job)
    if idempotency_key is not None:
        session.add(IdempotencyKey(
            user_id=owner.id, key=idempotency_key, fingerprint=fingerprint, status_code=202,
            response=body, job_id=job.id, created_at=now, expires_at=now + IDEMPOTENCY_TTL,
        ))  # fmt: skip
        session.flush()
    return Submission(job.id, job_type, body, replayed=False)


def _lock_user(session: DbSession, user_id: int) -> None:
    """A row lock on PostgreSQL, the write lock on SQLite: held until commit."""
    users = User.__table__
    session.execute(
        update(users).where(users.c.id == user_id).values(updated_at=users.c.updated_at)
    )


def _fingerprint(type_name: str, params: dict[str, Any]) -> str:
    canonical = simplejson.dumps([type_name, params], sort_keys=True, separators=(",", ":"),
                                 use_decimal=True)  # fmt: skip
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(
    session: DbSession, user_id: int, key: str, fingerprint: str, now: dt.datetime
) -> Submission | None:
    prior = session.get(IdempotencyKey, (user_id, key))
    if prior is None:
        return None
    if prior.expires_at <= now:  # an old key starts afresh
        session.delete(prior)
        session.flush()
        return None
    if prior.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for a different request in the last 24 hours; "
            "send a new key for a new request."
        )
    body = dict(prior.response)
    return Submission(prior.job_id, JOB_TYPES[body["type"]], body, replayed=True)


def _ensure_quota(session: DbSession, owner: User, settings: Settings) -> None:
    allowed = {"free": settings.jobs_active_free, "standard": settings.jobs_active_standard,
               "premium": settings.jobs_active_premium}[owner.tier]  # fmt: skip
    active = session.scalar(
        select(func.count()).select_from(Job)
        .where(Job.owner_id == owner.id, Job.status.in_(JobStatus.ACTIVE))
    )  # fmt: skip
    if (active or 0) >= allowed:
        raise QuotaExceeded(
            f"You have {active} active jobs, the most your {owner.tier} tier allows; "
            "wait for one to finish or cancel one.",
            limit=allowed,
        )


def mark_unsent(session: DbSession, job_id: str) -> None:
    """The broker refused the job's message: let the sweeper send it."""
    session.execute(
        update(_JOBS).where(_JOBS.c.id == job_id, _JOBS.c.status == JobStatus.QUEUED)
        .values(enqueued_at=None)
    )  # fmt: skip


# -- read, list, cancel, retry, forget ----------------------------------------------------


def get_job(session: DbSession, job_id: str, *, actor: User) -> Job:
    """The job, if ``actor`` owns it or is an admin (anyone else gets ``NotFound``)."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or (job.owner_id != actor.id and not actor.is_admin):
        raise NotFound(f"Job {job_id} does not exist.")
    return job


def list_jobs(
    session: DbSession, *, actor: User, filters: dict[str, Any], page: int, per_page: int
) -> JobPage:
    """The actor's jobs (an admin's ``all`` means everyone's), newest first."""
    query = select(Job)
    if filters.get("all"):
        if not actor.is_admin:
            raise PermissionDenied("Only admins may list everyone's jobs (all=true).")
    else:
        query = query.where(Job.owner_id == actor.id)
    for name in ("status", "type"):
        if name in filters:
            query = query.where(getattr(Job, name) == filters[name])
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    offset = (page - 1) * per_page
    if offset >= total:
        return JobPage([], total)
    ordered = query.order_by(Job.created_at.desc(), Job.id.desc())
    return JobPage(list(session.scalars(ordered.limit(per_page).offset(offset))), total)


@dataclass(frozen=True)
class JobStatistics:
    """How many jobs there are of each type in each status, and the oldest queued one."""

    counts: dict[tuple[str, str], int]  # (type, status) -> jobs
    oldest_queued_at: dt.datetime | None

    @property
    def by_type(self) -> dict[str, int]:
        return self._totals(0)

    @property
    def by_status(self) -> dict[str, int]:
        return self._totals(1)

    @property
    def by_type_and_status(self) -> dict[str, dict[str, int]]:
        matrix: dict[str, dict[str, int]] = {}
        for (type_, status), count in self.counts.items():
            matrix.setdefault(type_, {})[status] = count
        return matrix

    def _totals(self, index: int) -> dict[str, int]:
        totals: dict[str, int] = {}
        for key, count in self.counts.items():
            totals[key[index]] = totals.get(key[index], 0) + count
        return totals


def job_statistics(session: DbSession) -> JobStatistics:
    """Every job counted by type and status (one ``GROUP BY``), and the oldest queued."""
    rows = session.execute(
        select(Job.type, Job.status, func.count(), func.min(Job.created_at))
        .group_by(Job.type, Job.status)
    ).all()  # fmt: skip
    queued = [oldest for _, status, _, oldest in rows if status == JobStatus.QUEUED]
    return JobStatistics(
        counts={(type_, status): count for type_, status, count, _ in rows},
        oldest_queued_at=min(queued, default=None),
    )


def cancel_job(session: DbSession, job: Job, *, settings: Settings) -> Job:
    """A queued job ends ``cancelled`` at once; a running one is asked to stop."""
    if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        raise Conflict(f"Job {job.id} has {job.status}; only an active job can be cancelled.")
    now = utcnow()
    queued = _JOBS.c.status == JobStatus.QUEUED
    session.execute(
        update(_JOBS)
        .where(_JOBS.c.id == job.id, _JOBS.c.status.in_(JobStatus.ACTIVE))
        .values(
            cancel_requested=True,
            status=case((queued, JobStatus.CANCELLED), else_=_JOBS.c.status),
            finished_at=case((queued, now), else_=_JOBS.c.finished_at),
            expires_at=case((queued, now + _ttl(settings)), else_=_JOBS.c.expires_at),
        )
    )
    session.refresh(job)
    if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):  # it ended meanwhile
        raise Conflict(f"Job {job.id} has {job.status}; only an active job can be cancelled.")
    return job


def retry_job(
    session: DbSession, job: Job, *, actor: User, settings: Settings, request_id: str | None
) -> Submission:
    """A new job with the same type and params as a failed or cancelled one.

    The type is checked again for the actor: an admin demoted since may not retry an
    admin-only job.
    """
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise Conflict(f"Job {job.id} is {job.status}; only failed or cancelled jobs are retried.")
    return submit_job(
        session, owner=actor, job_type=job_type_for(job.type, actor), params=job.params,
        settings=settings, retry_of=job.id, request_id=request_id,
    )  # fmt: skip


def delete_job(session: DbSession, job: Job) -> None:
    """Forget a finished job and its result."""
    if not job.is_terminal:
        raise Conflict(f"Job {job.id} is {job.status}; cancel it before deleting it.")
    session.delete(job)
    session.flush()


def downloadable(job: Job) -> Job:
    """The job, if its result can be downloaded now (``Conflict``, ``Gone``)."""
    if job.status != JobStatus.SUCCEEDED:
        raise Conflict(f"Job {job.id} is {job.status}; its result is ready once it succeeds.")
    if job.expires_at is not None and job.expires_at <= utcnow():
        raise Gone(f"The result of job {job.id} expired at {job.expires_at:%Y-%m-%dT%H:%M:%SZ}.")
    return job


def result_chunks(session: DbSession, job: Job) -> Iterator[bytes]:
    """The pieces of the result file in order, a few at a time (bounded memory)."""
    seq = -1
    while True:
        rows = session.execute(
            select(JobResultChunk.seq, JobResultChunk.data)
            .where(JobResultChunk.job_id == job.id, JobResultChunk.attempt == job.attempts,
                   JobResultChunk.seq > seq)
            .order_by(JobResultChunk.seq).limit(CHUNKS_PER_READ)
        ).all()  # fmt: skip
        for seq, data in rows:  # noqa: B007 - the last seq is the next page's start
            yield bytes(data)
        if len(rows) < CHUNKS_PER_READ:
            return


def _changed(session: DbSession, statement: Any) -> int:
    """Rows matched by an UPDATE or DELETE."""
    return int(cast("CursorResult[Any]", session.execute(statement)).rowcount)


def _ttl(settings: Settings) -> dt.timedelta:
    return dt.timedelta(seconds=settings.job_result_ttl)


# -- worker transitions -------------------------------------------------------------------


def claim(session: DbSession, job_id: str) -> Job | None:
    """Start a queued job: ``None`` if it is not queued (already run, running, cancelled)."""
    claimed = _changed(
        session,
        update(_JOBS)
        .where(_JOBS.c.id == job_id, _JOBS.c.status == JobStatus.QUEUED)
        .values(status=JobStatus.RUNNING, attempts=_JOBS.c.attempts + 1, started_at=utcnow(),
                progress=initial_progress() | {"message": "starting"})
    )  # fmt: skip
    if not claimed:
        return None
    return session.get(Job, job_id, populate_existing=True)


def _fenced(job: Job, attempt: int) -> Any:
    return update(_JOBS).where(
        _JOBS.c.id == job.id, _JOBS.c.status == JobStatus.RUNNING, _JOBS.c.attempts == attempt
    )


def succeed(
    session: DbSession,
    job: Job,
    *,
    attempt: int,
    result: dict[str, Any],
    progress: dict[str, Any],
    settings: Settings,
) -> str | None:
    """Record success in the transaction that holds the effect.

    Returns the status the job ended with, or ``None`` if this run lost its claim (the
    caller must roll back). A cancel that reached only the database (Redis was down)
    wins over success: the caller rolls back and records ``cancelled``.
    """
    now = utcnow()
    done = _changed(
        session,
        _fenced(job, attempt).where(_JOBS.c.cancel_requested.is_(False))
        .values(status=JobStatus.SUCCEEDED, result=result, error=None, finished_at=now,
                expires_at=now + _ttl(settings), progress=progress)
    )  # fmt: skip
    if done:
        return JobStatus.SUCCEEDED
    still_ours = session.scalar(
        select(func.count()).select_from(Job)
        .where(Job.id == job.id, Job.status == JobStatus.RUNNING, Job.attempts == attempt)
    )  # fmt: skip
    return JobStatus.CANCELLED if still_ours else None


def end(
    session: DbSession,
    job: Job,
    *,
    attempt: int,
    status: str,
    settings: Settings,
    error: dict[str, Any] | None = None,
    progress: dict[str, Any] | None = None,
) -> bool:
    """End a run ``failed`` or ``cancelled`` (after the effect was rolled back)."""
    now = utcnow()
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": now,
                              "expires_at": now + _ttl(settings)}  # fmt: skip
    if progress is not None:
        values["progress"] = progress
    if status == JobStatus.CANCELLED:
        values["cancel_requested"] = True
    return bool(_changed(session, _fenced(job, attempt).values(**values)))


def requeue_or_fail(
    session: DbSession, job: Job, *, attempt: int, error: dict[str, Any], settings: Settings
) -> str | None:
    """After an unexpected error: queue the job again, or fail it on its last attempt."""
    if attempt >= settings.job_max_attempts:
        ended = end(session, job, attempt=attempt, status=JobStatus.FAILED, settings=settings,
                    error=error)  # fmt: skip
        return JobStatus.FAILED if ended else None
    requeued = _changed(
        session,
        _fenced(job, attempt).values(status=JobStatus.QUEUED, enqueued_at=utcnow(),
                                     progress=initial_progress())
    )  # fmt: skip
    return JobStatus.QUEUED if requeued else None


# -- sweeper ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    to_send: list[Job]  # queued again (or never sent): hand them to the broker
    ended: list[str]  # ids of jobs that the sweeper ended (failed or cancelled)


def recover(
    session: DbSession,
    *,
    heartbeats: dict[str, float | None],
    queue_depths: dict[str, int],
    settings: Settings,
) -> Recovery:
    """Find the jobs no worker will finish, and queue them again (or end them).

    ``heartbeats`` holds the last heartbeat of every running job (``None``: none in
    Redis); a running job whose worker has been silent for ``JOB_STALE_AFTER`` seconds
    was lost with its worker.
    A queued job is sent again if its message never reached the broker, or if it has
    waited ``JOB_REQUEUE_AFTER`` seconds while its queue is empty (the message was lost
    with a broker that restarted without persistence, or is held by a dead worker).
    """
    now = utcnow()
    stale_before = now.timestamp() - settings.job_stale_after
    to_send, ended = [], []
    for job in session.scalars(_light(Job.status == JobStatus.RUNNING)):
        # A beat older than the attempt's start is the previous attempt's; no beat at all
        # (Redis lost it) starts the clock now: the caller records one (``start_clocks``).
        beat = heartbeats.get(job.id)
        last = max(now.timestamp() if beat is None else beat, (job.started_at or now).timestamp())
        if last >= stale_before:
            continue
        outcome = _recover_running(session, job, settings)
        if outcome == JobStatus.QUEUED:
            to_send.append(job)
        elif outcome is not None:
            ended.append(job)
    resend_before = now - dt.timedelta(seconds=settings.job_requeue_after)
    requeued = {job.id for job in to_send}
    for job in session.scalars(_light(Job.status == JobStatus.QUEUED)):
        if job.id in requeued:
            continue
        lost = job.enqueued_at is None or (
            job.enqueued_at < resend_before and not queue_depths.get(JOB_TYPES[job.type].queue)
        )
        if lost:
            job.enqueued_at = now
            to_send.append(job)
    session.flush()
    return Recovery(to_send, [job.id for job in ended])


def _light(condition: Any) -> Any:
    """Jobs without their params and results (an import's params weigh megabytes)."""
    return select(Job).where(condition).options(
        load_only(Job.id, Job.type, Job.attempts, Job.cancel_requested, Job.started_at,
                  Job.enqueued_at)
    )  # fmt: skip


def _recover_running(session: DbSession, job: Job, settings: Settings) -> str | None:
    attempt = job.attempts
    if job.cancel_requested:
        ok = end(session, job, attempt=attempt, status=JobStatus.CANCELLED, settings=settings)
        return JobStatus.CANCELLED if ok else None
    error = job_problem(job.id, "worker-lost",
                        f"The worker running attempt {attempt} stopped responding.")  # fmt: skip
    return requeue_or_fail(session, job, attempt=attempt, error=error, settings=settings)


def purge_expired(session: DbSession) -> tuple[int, int]:
    """Delete finished jobs (with their files) and idempotency keys past their expiry."""
    now = utcnow()
    jobs = _changed(
        session,
        delete(Job).where(Job.expires_at < now, Job.status.in_(JobStatus.TERMINAL))
    )  # fmt: skip
    keys = _changed(session, delete(IdempotencyKey).where(IdempotencyKey.expires_at < now))
    return jobs, keys
