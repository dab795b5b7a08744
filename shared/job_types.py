"""The job registry: for each job type, its params schema, its queue and its task name.

The web process validates and enqueues by name through this table; the worker registers
one task per type under the same name. Neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema

from shared.schemas.job import (
    CacheInvalidateParamsSchema,
    CacheWarmParamsSchema,
    ExportParamsSchema,
    ImportParamsSchema,
    ReportParamsSchema,
)

DEFAULT_QUEUE = "default"
BULK_QUEUE = "bulk"  # imports and exports: long, heavy, kept apart from quick jobs
MAINTENANCE_QUEUE = "maintenance"  # cache and housekeeping
QUEUES = (DEFAULT_QUEUE, BULK_QUEUE, MAINTENANCE_QUEUE)
JOB_TASK_PREFIX = "folio.jobs."  # a job's task takes one argument: the job id


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
        return f"{JOB_TASK_PREFIX}{self.name}"


BOOKS_IMPORT = JobType("books.import", BULK_QUEUE, ImportParamsSchema(), changes_catalog=True)
BOOKS_EXPORT = JobType("books.export", BULK_QUEUE, ExportParamsSchema(), result_file=True)
BOOKS_REPORT = JobType("books.report", DEFAULT_QUEUE, ReportParamsSchema())
CACHE_WARM = JobType("cache.warm", MAINTENANCE_QUEUE, CacheWarmParamsSchema(), admin_only=True)
CACHE_INVALIDATE = JobType(
    "cache.invalidate", MAINTENANCE_QUEUE, CacheInvalidateParamsSchema(), admin_only=True
)

JOB_TYPES: dict[str, JobType] = {
    t.name: t for t in (BOOKS_IMPORT, BOOKS_EXPORT, BOOKS_REPORT, CACHE_WARM, CACHE_INVALIDATE)
}

# Housekeeping tasks (beat's, or sent after bulk changes); not jobs: no row, no client.
RECOVER_JOBS_TASK = "folio.maintenance.recover_jobs"
PURGE_EXPIRED_TASK = "folio.maintenance.purge_expired"
WARM_CACHE_TASK = "folio.maintenance.warm_cache"
DROP_DEAD_CACHE_TASK = "folio.maintenance.drop_dead_cache"
FLUSH_VIEWS_TASK = "folio.maintenance.flush_views"
HOUSEKEEPING_TASKS = (RECOVER_JOBS_TASK, PURGE_EXPIRED_TASK, WARM_CACHE_TASK,
                      DROP_DEAD_CACHE_TASK, FLUSH_VIEWS_TASK)  # fmt: skip
