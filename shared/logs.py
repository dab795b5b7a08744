"""Logs as one JSON object per line on stdout, with the request and job they belong to.

Web, worker and beat call ``configure_logging`` (gunicorn through ``logging_config``).
What a line is about (``request_id``, ``job_id``, ``task_id``) lives in a context
variable: set it with ``log_context`` around a unit of work, and every record logged
inside, by Folio or a library, carries it. A context variable, not a thread-local:
each thread (gunicorn's gthread, Celery's thread pool) has its own, and a reused thread
keeps it, so whoever binds it also clears it when the unit of work ends.
"""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

CONTEXT_FIELDS = ("request_id", "job_id", "task_id")
# gunicorn's access record has its atoms as ``args``: the ones worth a field of their own.
ACCESS_FIELDS = {
    "method": "m", "path": "U", "query": "q", "status": "s", "duration_ms": "M",
    "bytes": "B", "remote_addr": "h", "user_agent": "a", "request_id": "{x-request-id}o",
}  # fmt: skip
ACCESS_NUMBERS = {"status", "duration_ms", "bytes"}
ACCESS_LOGGER = "gunicorn.access"

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("folio_log_context", default=_EMPTY)


def bind_log_context(**fields: str | None) -> Token[Mapping[str, str]]:
    """Add ``fields`` (those with a value) to this context's; reset with the token."""
    given = {name: value for name, value in fields.items() if value}
    return _context.set(MappingProxyType({**_context.get(), **given}))


def reset_log_context(token: Token[Mapping[str, str]] | None = None) -> None:
    """Back to before ``token`` was bound; to no fields at all without one."""
    if token is None:
        _context.set(_EMPTY)
    else:
        _context.reset(token)


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Every record logged in the block carries ``fields``."""
    token = bind_log_context(**fields)
    try:
        yield
    finally:
        reset_log_context(token)


class ContextFilter(logging.Filter):
    """Copies the context's fields onto each record (fields given with ``extra=`` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "process", ...context, "exc"?}`` on one line."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": self.process,
        }
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is not None:
                line[name] = getattr(record, name)
        if record.name == ACCESS_LOGGER and isinstance(record.args, Mapping):
            line.update(access_fields(record.args))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    """gunicorn's access atoms as named fields; ``-`` (gunicorn's "none") is left out.

    gunicorn's ``SafeAtoms`` escapes ``"`` as ``\\"`` for its text format: undone here, as
    JSON escapes on its own.
    """
    fields: dict[str, Any] = {}
    for name, atom in ACCESS_FIELDS.items():
        value = atoms[atom]  # SafeAtoms: "-" for an absent atom, never a KeyError
        if value in ("-", "", None):
            continue
        if name in ACCESS_NUMBERS:
            fields[name] = int(value)
        else:
            fields[name] = value.replace('\\"', '"') if isinstance(value, str) else value
    return fields


def logging_config(level: str, *, process: str) -> dict[str, Any]:
    """A ``dictConfig``: one JSON handler on stdout at the root, every logger propagating.

    gunicorn's own loggers lose their plain-text handlers and propagate to it; its access
    lines stay at INFO whatever the level, as gunicorn has them.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"json": {"()": JsonFormatter, "process": process}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["context"],
            },
        },
        "root": {"level": level.upper(), "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            ACCESS_LOGGER: {"level": "INFO", "handlers": [], "propagate": True},
        },
    }


def configure_logging(level: str, *, process: str) -> None:
    """JSON lines on stdout for this process; warnings become records too (one line each)."""
    logging.config.dictConfig(logging_config(level, process=process))
    logging.captureWarnings(True)
