"""The JSON line format, the log context and the web's per-request binding, in process."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from gunicorn.glogging import SafeAtoms

from api import create_app
from shared.logs import ContextFilter, JsonFormatter, access_fields, log_context
from tests.conftest import test_settings


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose records are formatted as the processes format them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("worker"))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in stream.getvalue().splitlines()]


def test_a_line_carries_its_context_and_a_traceback_stays_on_it(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = captured
    with log_context(request_id="req-1", job_id="job-1"):
        with log_context(task_id="task-1"):
            try:
                raise ValueError("broken\nacross lines")
            except ValueError:
                log.exception("job %s raised", "job-1")
        log.info("after the task")
    log.warning("outside", extra={"job_id": "given"}, stack_info=True)
    assert len(stream.getvalue().splitlines()) == 3
    raised, after, outside = lines(stream)
    assert raised | {"ts": None, "exc": None} == {
        "ts": None, "exc": None, "level": "ERROR", "logger": "tests.logs",
        "message": "job job-1 raised", "process": "worker", "request_id": "req-1",
        "job_id": "job-1", "task_id": "task-1",
    }  # fmt: skip
    assert raised["ts"].endswith("+00:00")
    assert raised["exc"].startswith("Traceback (most recent call last):")
    assert raised["exc"].endswith("ValueError: broken\nacross lines")
    assert after["job_id"] == "job-1"
    assert "task_id" not in after
    assert outside["job_id"] == "given"
    assert "request_id" not in outside
    assert outside["stack"].startswith("Stack (most recent call last):")


def test_gunicorn_access_atoms_become_named_fields() -> None:
    atoms = SafeAtoms({
        "m": "GET", "U": "/api/books", "q": "", "s": "200", "M": 12, "B": 345,
        "h": "10.0.0.1", "a": '"quoted" \\" agent', "{x-request-id}o": "abc",
    })  # fmt: skip
    assert access_fields(atoms) == {
        "method": "GET", "path": "/api/books", "status": 200, "duration_ms": 12, "bytes": 345,
        "remote_addr": "10.0.0.1", "user_agent": '"quoted" \\" agent', "request_id": "abc",
    }  # fmt: skip
    assert access_fields(SafeAtoms({"m": "GET", "s": "400"})) == {"method": "GET", "status": 400}


def test_every_line_of_a_request_has_its_id_and_the_next_request_starts_clean(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = captured
    app = create_app(test_settings(database_url="sqlite://", redis_url="redis://127.0.0.1:1/0"))
    app.add_url_rule("/probe", "probe", lambda: log.info("serving") or "ok")
    with app.test_client() as client:
        assert client.get("/probe", headers={"X-Request-ID": "first"}).status_code == 200
        log.info("between requests, same thread")
        assert client.get("/probe").headers["X-Request-ID"] != "first"
    first, between, second = lines(stream)
    assert first["request_id"] == "first"
    assert "request_id" not in between
    assert second["request_id"] not in (None, "first")
