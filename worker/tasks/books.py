"""The book job types: import, export, report. Each task is a thin call of ``run_job``."""

from __future__ import annotations

from typing import Any

from shared.db import DbSession
from shared.job_types import BOOKS_EXPORT, BOOKS_IMPORT, BOOKS_REPORT
from shared.models import Job
from shared.services import exports, imports, reports
from shared.services.jobs import Checkpoints
from worker.app import FolioCelery
from worker.runner import run_job


def register(celery: FolioCelery) -> None:
    @celery.task(name=BOOKS_IMPORT.task_name)
    def import_books(job_id: str) -> Any:
        """Safe to run twice: only a queued job starts."""
        return run_job(celery, job_id, imports.import_books)

    @celery.task(name=BOOKS_EXPORT.task_name)
    def export_books(job_id: str) -> Any:
        return run_job(celery, job_id, exports.export_books)

    def cached_report(session: DbSession, job: Job, run: Checkpoints) -> dict[str, Any]:
        """The same report of the same catalog version is computed once."""
        return celery.catalog_cache.remember(
            reports.cache_name(job.params), lambda: reports.catalog_report(session, job, run)
        )

    @celery.task(name=BOOKS_REPORT.task_name)
    def report_books(job_id: str) -> Any:
        return run_job(celery, job_id, cached_report)
