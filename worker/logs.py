"""Celery's worker and beat log JSON lines (``shared.logs``), each job's with its ids.

A job's lines carry its ``job_id``, the ``request_id`` of the HTTP request that caused
it (the ``folio_request_id`` header that ``send_job`` puts on the message) and the Celery
``task_id``: bound when the task starts and cleared when it ends, so that a pool thread
or process reused for the next task carries nothing over.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from celery.apps.beat import Beat
from celery.apps.worker import Worker
from celery.signals import setup_logging, task_postrun, task_prerun
from celery.worker.request import Request

from shared.broker import REQUEST_ID_HEADER
from shared.job_types import JOB_TYPES
from shared.logs import bind_log_context, configure_logging, reset_log_context

if TYPE_CHECKING:
    from worker.app import FolioCelery

JOB_TASKS = frozenset(job_type.task_name for job_type in JOB_TYPES.values())
# "Task ... received" is logged by the consumer before any task signal: the request
# being received says what it is about (see ``JobRequest``).
RECEIVED_LOGGER = "celery.worker.strategy"


def init_logging(celery: FolioCelery) -> None:
    """JSON logs for ``celery worker`` and ``celery beat`` run from this app."""
    level = celery.settings.log_level
    celery.Worker = celery.subclass_with_self(_json_program(Worker, level, "worker"))
    celery.Beat = celery.subclass_with_self(_json_program(Beat, level, "beat"))
    # With a receiver connected Celery installs no handler or formatter of its own.
    setup_logging.connect(_logging_is_configured, weak=False)
    task_prerun.connect(_bind_task, weak=False)
    task_postrun.connect(_clear_task, weak=False)
    logging.getLogger(RECEIVED_LOGGER).addFilter(_received_filter)


def _json_program(program: type, level: str, process: str) -> type:
    """Celery's worker or beat program, logging JSON from the start and without a banner.

    Configured before Celery's own start-up checks log anything (the warning about
    running as root included); the banner is plain text on stdout, so it is off, as with
    ``--quiet``. The worker's SIGTERM handler still writes "worker: Warm shutdown
    (MainProcess)" straight to the stdout file: the one plain line, as it stops.
    """

    class JsonProgram(program):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            configure_logging(level, process=process)
            super().__init__(*args, **{**kwargs, "quiet": True})

    return JsonProgram


def _logging_is_configured(**_: Any) -> None:
    """Done by ``_json_program``; connected only so that Celery keeps its hands off."""


def job_fields(task_name: str, args: Sequence[Any], headers: Mapping[str, Any]) -> dict[str, str]:
    """The ``job_id`` and ``request_id`` of a job task's run (nothing for housekeeping)."""
    if task_name not in JOB_TASKS or not args:
        return {}
    fields = {"job_id": str(args[0])}
    if headers.get(REQUEST_ID_HEADER):
        fields["request_id"] = str(headers[REQUEST_ID_HEADER])
    return fields


def _bind_task(task_id: str, task: Any, args: Sequence[Any], **_: Any) -> None:
    headers = vars(task.request)  # Celery puts the message's own headers on the request
    bind_log_context(task_id=task_id, **job_fields(task.name, args, headers))


def _clear_task(**_: Any) -> None:
    reset_log_context()


class JobRequest(Request):
    """A received task message that remembers its log fields for its "received" line."""

    received: tuple[str, dict[str, str]] = ("", {})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields = job_fields(self.name, self.args, self.request_dict)
        JobRequest.received = (self.id, {"task_id": self.id, **fields})


def _received_filter(record: logging.LogRecord) -> bool:
    """Puts the ids of the request just received on its "received" line."""
    data = getattr(record, "data", None)
    task_id, fields = JobRequest.received
    if isinstance(data, Mapping) and data.get("id") == task_id:
        for name, value in fields.items():
            setattr(record, name, value)
    return True
