"""The job registry: for each job type, its params schema, its queue and its task name.

The web process validates and enqueues by name through this table; the worker registers
one task per type under the same name. Neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema

from shared.schemas.job import ExportParamsSchema, ImportParamsSchema, ReportParamsSchema

DEFAULT_QUEUE = "default"
BULK_QUEUE = "bulk"  # imports and exports: long, heavy, kept apart from quick jobs
MAINTENANCE_QUEUE = "maintenance"  # cache and housekeeping
QUEUES = (DEFAULT_QUEUE, BULK_QUEUE, MAINTENANCE_QUEUE)


@dataclass(frozen=True)
class JobType:
    name: str
    queue: str
    params_schema: Schema
    admin_only: bool = False
    # Produces a file that ``GET /api/jobs/{id}/result`` streams (else the result is JSON).
    result_file: bool = False
    # Writes books: its success makes cached catalog reads unreachable.
    changes_catalog: bool = False

    @property
    def task_name(self) -> str:
        return f"folio.jobs.{self.name}"


BOOKS_IMPORT = JobType("books.import", BULK_QUEUE, ImportParamsSchema(), changes_catalog=True)
BOOKS_EXPORT = JobType("books.export", BULK_QUEUE, ExportParamsSchema(), result_file=True)
BOOKS_REPORT = JobType("books.report", DEFAULT_QUEUE, ReportParamsSchema())

JOB_TYPES: dict[str, JobType] = {t.name: t for t in (BOOKS_IMPORT, BOOKS_EXPORT, BOOKS_REPORT)}

# Housekeeping tasks that beat schedules; they are not jobs (no row, no client).
RECOVER_JOBS_TASK = "folio.maintenance.recover_jobs"
PURGE_EXPIRED_TASK = "folio.maintenance.purge_expired"
