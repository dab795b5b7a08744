"""Housekeeping that beat schedules: recover jobs no worker will finish, purge expired."""

from __future__ import annotations

import logging

from sqlalchemy import select

from shared.broker import send_job
from shared.db import db
from shared.job_types import JOB_TYPES, PURGE_EXPIRED_TASK, RECOVER_JOBS_TASK
from shared.models import Job, JobStatus
from shared.redis_client import make_redis
from shared.services import job_signals, jobs
from shared.services.queues import queue_depths
from worker.app import FolioCelery

log = logging.getLogger(__name__)


def register(celery: FolioCelery) -> None:
    broker = make_redis(celery.settings.broker_url)

    @celery.task(name=RECOVER_JOBS_TASK)
    def recover_jobs() -> dict[str, int]:
        """Queue again the jobs lost with a worker or a broker; send the never-sent."""
        session, settings = db.session, celery.settings
        running = list(session.scalars(select(Job.id).where(Job.status == JobStatus.RUNNING)))
        beats = dict(zip(running, job_signals.last_heartbeats(celery.redis, running), strict=True))
        job_signals.start_clocks(
            celery.redis, [job_id for job_id, at in beats.items() if at is None]
        )
        depths = queue_depths(broker)
        recovery = jobs.recover(session, heartbeats=beats, queue_depths=depths, settings=settings)
        session.commit()
        unsent = [job for job in recovery.to_send
                  if not send_job(celery, JOB_TYPES[job.type], job.id,
                                  request_id=job.request_id)]  # fmt: skip
        for job in unsent:
            jobs.mark_unsent(session, job.id)
        session.commit()
        for job_id in recovery.ended:
            job_signals.notify_finished(celery.redis, job_id)
        job_signals.forget(celery.redis, recovery.ended)
        if recovery.to_send or recovery.ended:
            log.warning("recovered jobs: %d sent again, %d ended, %d unsent",
                        len(recovery.to_send), len(recovery.ended), len(unsent))  # fmt: skip
        return {"sent": len(recovery.to_send) - len(unsent), "ended": len(recovery.ended)}

    @celery.task(name=PURGE_EXPIRED_TASK)
    def purge_expired() -> dict[str, int]:
        """Delete finished jobs, their result files and idempotency keys past expiry."""
        purged_jobs, purged_keys = jobs.purge_expired(db.session)
        db.session.commit()
        if purged_jobs or purged_keys:
            log.info("purged %d expired jobs and %d idempotency keys", purged_jobs, purged_keys)
        return {"jobs": purged_jobs, "idempotency_keys": purged_keys}
