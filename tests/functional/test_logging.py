"""Logs as an operator reads them: one JSON object per line from web, worker and beat.

The web is the Procfile's ``web`` line (gunicorn, production mode), worker and beat are
real Celery processes, each logging to its own file; one ``X-Request-ID`` is followed
from the access line of the request to the worker's lines of the job it created.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from shared.db import db
from shared.models import JobStatus
from tests.conftest import worker_env
from tests.support.live import Api
from tests.support.servers import RedisServer
from tests.support.web import procfile_web, run_line
from tests.support.workers import CeleryProcess

SECRET = "logging-test-secret-0123456789abcdef-xyz"
Line = dict[str, Any]


@dataclass
class Stack:
    api: Api
    web_log: Path
    worker: CeleryProcess
    beat: CeleryProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Stack]:
    """gunicorn from the Procfile, a worker and beat, on a Redis of their own."""
    redis = RedisServer()
    # One attempt per job: the failing job of the last test fails at once.
    settings = {"SECRET_KEY": SECRET, "LOG_LEVEL": "INFO", "JOB_MAX_ATTEMPTS": "1"}
    web = settings | {"FOLIO_ENV": "production", "DATABASE_URL": database_url,
                      "REDIS_URL": redis.url, "CORS_ORIGINS": "https://app.example",
                      "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2"}  # fmt: skip
    worker = CeleryProcess("worker", worker_env(database_url, redis.url, **settings))
    beat = CeleryProcess("beat", worker_env(database_url, redis.url, **settings))
    web_log = tmp_path_factory.mktemp("logging") / "web.log"
    try:
        redis.start()
        run_line("release", web)
        worker.start()
        beat.start()
        with procfile_web(web, web_log) as url:
            yield Stack(Api(url), web_log, worker, beat)
    finally:
        try:
            beat.stop()
            worker.stop()
        finally:
            redis.remove()


def json_lines(text: str) -> list[Line]:
    """Every non-empty line, each of which must be one JSON object."""
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {raw!r}\n{text[-3000:]}")
        assert isinstance(line, dict), raw
        assert {"ts", "level", "logger", "message", "process"} <= line.keys(), raw
        lines.append(line)
    return lines


def wait_for_lines(read: Callable[[], str], found: Callable[[list[Line]], bool]) -> list[Line]:
    """The lines of a log once ``found`` holds for them (at most 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        lines = json_lines(read())
        if found(lines):
            return lines
        if time.monotonic() > deadline:
            pytest.fail(f"not in the log after 20 s:\n{read()[-4000:]}")
        time.sleep(0.1)


def client(stack: Stack) -> Api:
    account = {"email": f"{uuid.uuid4().hex[:12]}@example.com",
               "username": f"u{uuid.uuid4().hex[:12]}", "password": "long-password"}  # fmt: skip
    assert stack.api.post("/api/auth/register", json=account).status_code == 201
    credentials = {"email": account["email"], "password": account["password"]}
    login = stack.api.post("/api/auth/login", json=credentials)
    assert login.status_code == 200, login.text
    return stack.api.as_user(login.json()["access_token"])


def submit(user: Api, titles: list[str], headers: dict[str, str] | None = None) -> tuple[str, str]:
    """POST an import; its job id and the request id the web answered with."""
    books = [{"title": title, "author": "Someone"} for title in titles]
    response = user.post("/api/jobs", json={"type": "books.import", "params": {"books": books}},
                         headers=headers or {})  # fmt: skip
    assert response.status_code == 202, response.text
    return response.json()["id"], response.headers["X-Request-ID"]


def finished(user: Api, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job: dict[str, Any] = user.get(f"/api/jobs/{job_id}", params={"wait": 5}).json()
        if job["status"] in JobStatus.TERMINAL:
            return job
    pytest.fail(f"job {job_id} did not end in 30 s")


def task_ran(job_id: str) -> Callable[[list[Line]], bool]:
    """True once Celery logged the end of the job's task (it returns how the job ended)."""
    return lambda lines: any(
        line.get("job_id") == job_id and line["logger"] == "celery.app.trace"
        and "succeeded in" in line["message"] for line in lines
    )  # fmt: skip


def housekeeping_after(job_id: str) -> Callable[[list[Line]], bool]:
    """True once a housekeeping task ended after the job's task: its threads were reused."""

    def found(lines: list[Line]) -> bool:
        ends = [i for i, line in enumerate(lines) if task_ran(job_id)([line])]
        return bool(ends) and any(
            "folio.maintenance." in line["message"] and "succeeded in" in line["message"]
            for line in lines[ends[0]:]
        )  # fmt: skip

    return found


def test_one_request_id_from_the_access_line_to_every_worker_line_of_its_job(
    stack: Stack,
) -> None:
    user = client(stack)
    sent = f"trace-{uuid.uuid4().hex}"
    job_id, answered = submit(user, ["Dune", "Emma"], {"X-Request-ID": sent})
    assert answered == sent
    other_id, other_request = submit(user, ["Ulysses"])  # the web gives it an id of its own
    assert finished(user, job_id)["status"] == JobStatus.SUCCEEDED
    assert finished(user, other_id)["status"] == JobStatus.SUCCEEDED

    worker = wait_for_lines(
        lambda: stack.worker.output(tail=None),
        lambda ls: task_ran(other_id)(ls) and housekeeping_after(job_id)(ls),
    )
    web = wait_for_lines(
        stack.web_log.read_text, lambda ls: any(line.get("request_id") == sent for line in ls)
    )
    beat = wait_for_lines(
        lambda: stack.beat.output(tail=None),
        lambda ls: any("Sending due task" in line["message"] for line in ls),
    )

    access = [line for line in web if line["logger"] == "gunicorn.access"
              and line.get("request_id") == sent]  # fmt: skip
    assert len(access) == 1, web
    assert access[0] | {"ts": None, "duration_ms": None} == {
        "ts": None, "duration_ms": None, "level": "INFO", "logger": "gunicorn.access",
        "message": "POST /api/jobs 202", "process": "web", "method": "POST",
        "path": "/api/jobs", "status": 202, "bytes": access[0]["bytes"],
        "remote_addr": "127.0.0.1", "user_agent": access[0]["user_agent"], "request_id": sent,
    }  # fmt: skip
    assert isinstance(access[0]["duration_ms"], int)
    assert {line["process"] for line in web} == {"web"}
    assert any(line["logger"] == "gunicorn.error" for line in web)  # gunicorn's own, too

    job_lines = [line for line in worker if line.get("job_id") == job_id]
    messages = [line["message"] for line in job_lines]
    assert any("received" in m for m in messages), messages
    assert any(f"job {job_id} (books.import) attempt 1 started" in m for m in messages), messages
    assert any(f"job {job_id} attempt 1 ended: succeeded" in m for m in messages), messages
    assert any("succeeded in" in m for m in messages), messages
    task_ids = {line["task_id"] for line in job_lines}
    assert len(task_ids) == 1, job_lines
    assert all(line["request_id"] == sent and line["process"] == "worker" for line in job_lines)

    # No leak across tasks run by the same threads: another job has its own ids, and
    # housekeeping (beat's sweeper every second) none at all.
    other_lines = [line for line in worker if line.get("job_id") == other_id]
    assert other_lines
    assert {line["request_id"] for line in other_lines} == {other_request}
    assert [line for line in worker if line.get("request_id") == sent] == job_lines
    housekeeping = [line for line in worker if "folio.maintenance." in line["message"]]
    assert housekeeping, "beat's tasks ran on the worker"
    assert not [line for line in housekeeping if "job_id" in line or "request_id" in line]
    assert any(line["message"].endswith("ready.") for line in worker)
    assert {line["process"] for line in beat} == {"beat"}


def sabotage(app: Flask, *, undo: bool = False) -> None:
    """A trigger failing every INSERT into books: an import raises an unexpected error."""
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
        if undo:
            statements = ["DROP TRIGGER IF EXISTS folio_test_logging ON books",
                          "DROP FUNCTION IF EXISTS folio_test_logging()"] if postgres else [
                          "DROP TRIGGER IF EXISTS folio_test_logging"]  # fmt: skip
        elif postgres:
            statements = [
                "CREATE FUNCTION folio_test_logging() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RAISE EXCEPTION 'sabotaged'; END; $$",
                "CREATE TRIGGER folio_test_logging BEFORE INSERT ON books "
                "FOR EACH ROW EXECUTE FUNCTION folio_test_logging()",
            ]
        else:
            statements = ["CREATE TRIGGER folio_test_logging BEFORE INSERT ON books "
                          "BEGIN SELECT RAISE(ABORT, 'sabotaged'); END"]  # fmt: skip
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()


def test_an_exception_in_a_job_is_one_line_with_its_traceback(app: Flask, stack: Stack) -> None:
    user = client(stack)
    sent = f"broken-{uuid.uuid4().hex}"
    sabotage(app)
    try:
        job_id, _ = submit(user, ["Never stored"], {"X-Request-ID": sent})
        assert finished(user, job_id)["status"] == JobStatus.FAILED
    finally:
        sabotage(app, undo=True)
    worker = wait_for_lines(lambda: stack.worker.output(tail=None), task_ran(job_id))
    raised = [line for line in worker if line.get("job_id") == job_id and "exc" in line]
    assert len(raised) == 1, raised
    assert raised[0]["level"] == "ERROR"
    assert raised[0]["message"] == f"job {job_id} attempt 1 raised"
    assert raised[0]["request_id"] == sent
    assert raised[0]["exc"].startswith("Traceback (most recent call last):")
    assert "sabotaged" in raised[0]["exc"]
    assert raised[0]["exc"].count("\n") > 5  # the whole traceback, inside one line
