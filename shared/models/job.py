"""A job: expensive work that a worker runs, and the one truth about how it went.

Clients never see Celery's states; they see this row. A run claims the row with an
atomic check-and-set that raises ``attempts``, and every later write of that run is
fenced by the attempt it claimed (``WHERE status = 'running' AND attempts = n``), so a
run that lost its claim (its worker was presumed dead) can no longer change anything.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, db, utcnow


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    ALL = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
    ACTIVE = (QUEUED, RUNNING)
    TERMINAL = (SUCCEEDED, FAILED, CANCELLED)


def new_job_id() -> str:
    return str(uuid.uuid4())


def initial_progress() -> dict[str, Any]:
    return {"percent": 0.0, "processed": 0, "total": None, "message": "queued"}


class Job(db.Model):  # type: ignore[name-defined]
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_owner_id_created_at", "owner_id", "created_at"),
        Index("ix_jobs_owner_id_status", "owner_id", "status"),
        Index("ix_jobs_status_enqueued_at", "status", "enqueued_at"),
        Index("ix_jobs_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_job_id)
    type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=initial_progress)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    retry_of: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("jobs.id", ondelete="SET NULL")
    )
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When a message for this job was last handed to the broker (NULL: not yet, or the
    # broker refused it); the sweeper sends queued jobs that no worker picked up.
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_terminal(self) -> bool:
        return self.status in JobStatus.TERMINAL

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.type} {self.status}>"


class JobResultChunk(db.Model):  # type: ignore[name-defined]
    """One piece of a job's result file, in order; any web process can stream it.

    Chunks carry the attempt that wrote them: a download reads only those of the attempt
    that succeeded, whatever an abandoned attempt left behind.
    """

    __tablename__ = "job_result_chunks"

    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class IdempotencyKey(db.Model):  # type: ignore[name-defined]
    """The first answer to a request sent with an ``Idempotency-Key``, kept for replay."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    job_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
