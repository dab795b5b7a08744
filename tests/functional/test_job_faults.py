"""Jobs under faults, end to end: real HTTP, a real Redis, real Celery worker and beat.

A worker SIGKILLed mid-import, Redis or only the broker down at submit, cancels racing
a queue with no worker and a running import, a job that fails on every attempt, and
beat's purge; then the sweeper's judgement of two states those runs produced, without
timing. Each test stops the processes it started (by PID) in a ``finally`` block, and
leaves the session's Redis and worker running.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import bindparam, text

from shared.db import db, utcnow
from shared.isbn import isbn13_check_digit
from shared.job_types import BULK_QUEUE, QUEUES
from shared.models import GENRES, Job, JobStatus
from shared.models.job import initial_progress
from shared.services import jobs
from tests.conftest import test_settings, worker_env
from tests.functional.conftest import assert_problem
from tests.support.live import Api, serve
from tests.support.servers import RedisServer
from tests.support.workers import CeleryProcess

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
BIG_IMPORT = 50_000
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}
# Lines that beat and the sweeper log every second, which would bury everything else.
LOG_NOISE = ("Sending due task", "Discarding revoked task", "recover_jobs", "SecurityWarning")


# -- helpers ------------------------------------------------------------------------------


def _isbn13(n: int) -> str:
    body = f"978{n:09d}"
    return body + isbn13_check_digit(body)


def _books(count: int, *, start: int = 0) -> list[dict[str, Any]]:
    """``count`` valid books with unique ISBN-13s (numbered from ``start``)."""
    return [
        {"title": f"Fault tolerance, volume {n}", "author": f"Author {n % 97}",
         "isbn": _isbn13(n), "published_year": 1900 + n % 120,
         "genre": GENRES[n % len(GENRES)], "price": 5 + n % 50 + 0.99}
        for n in range(start, start + count)
    ]  # fmt: skip


def _import(books: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "books.import", "params": {"books": books}}


def _brief(job: dict[str, Any]) -> dict[str, Any]:
    """A job without its params (50,000 rows do not belong in an assertion message)."""
    return {key: value for key, value in job.items() if key != "params"}


def _logs(*processes: CeleryProcess, lines: int = 60) -> str:
    """The last ``lines`` telling lines each process logged, for an assertion message."""
    parts = []
    for process in processes:
        if not process.log.exists():
            continue
        kept = [line for line in process.output(tail=None).splitlines()
                if line.strip() and not any(noise in line for noise in LOG_NOISE)]  # fmt: skip
        text = "\n".join(kept[-lines:])
        parts.append(f"\n--- celery {process.role} ({process.log}) ---\n{text}")
    return "".join(parts)


def _submit(client: Api, payload: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/jobs", json=payload)
    assert response.status_code == 202, response.text[:2000]
    job: dict[str, Any] = response.json()
    return job


def _get(client: Api, job_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/jobs/{job_id}", params=params)
    assert response.status_code == 200, response.text[:2000]
    job: dict[str, Any] = response.json()
    return job


def _poll(
    client: Api,
    job_id: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    timeout: float,
    processes: tuple[CeleryProcess, ...] = (),
    interval: float = 0.05,
) -> dict[str, Any]:
    """GET the job every ``interval`` seconds until ``until(job)``, at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = _get(client, job_id)
        if until(job):
            return job
        time.sleep(interval)
    pytest.fail(f"job {job_id} not as expected after {timeout}s: {_brief(job)}{_logs(*processes)}")


def _finished(
    client: Api, job_id: str, *, timeout: float, processes: tuple[CeleryProcess, ...] = ()
) -> dict[str, Any]:
    """The job once it is terminal, waiting with ``?wait`` (at most ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while (left := deadline - time.monotonic()) > 0:
        job = _get(client, job_id, wait=max(1, min(10, int(left))))
        if job["status"] in JobStatus.TERMINAL:
            return job
    pytest.fail(f"job {job_id} did not end in {timeout}s: {_brief(job)}{_logs(*processes)}")


def _catalog(app: Flask) -> tuple[int, int]:
    """Rows in ``books`` and distinct ISBN-13s among them, read from the database."""
    with app.app_context():
        rows, isbns = db.session.execute(
            text("SELECT COUNT(*), COUNT(DISTINCT isbn13) FROM books")
        ).one()
    return int(rows), int(isbns)


def _books_total(client: Api) -> int:
    response = client.get("/api/books", params={"per_page": 1})
    assert response.status_code == 200, response.text
    return int(response.json()["pagination"]["total_items"])


def _isbns_present(app: Flask, books: list[dict[str, Any]]) -> int:
    isbns = [book["isbn"] for book in books]
    with app.app_context():
        found = db.session.execute(
            text("SELECT COUNT(*) FROM books WHERE isbn13 IN :isbns").bindparams(
                bindparam("isbns", expanding=True)
            ),
            {"isbns": isbns},
        ).scalar_one()
    return int(found)


def _chunks(app: Flask, job_id: str) -> int:
    with app.app_context():
        return int(
            db.session.execute(
                text("SELECT COUNT(*) FROM job_result_chunks WHERE job_id = :id"), {"id": job_id}
            ).scalar_one()
        )


def _assert_problem_object(error: Any, job_id: str) -> None:
    assert isinstance(error, dict), error
    assert error.keys() >= PROBLEM_KEYS, error
    assert error["type"].startswith("/problems/"), error
    assert error["instance"] == f"/api/jobs/{job_id}", error
    assert isinstance(error["status"], int), error
    assert error["detail"], error


def _assert_accepted_or_unavailable(response: requests.Response) -> None:
    """202 (the job is durable) or a 503 problem with Retry-After: never a 500."""
    assert response.status_code in {202, 503}, f"{response.status_code}: {response.text[:2000]}"
    if response.status_code == 503:
        assert_problem(response, 503)
        assert response.headers.get("Retry-After", "").isdigit(), response.headers


@contextmanager
def _served(**overrides: Any) -> Iterator[str]:
    """Another app instance over HTTP (its base URL)."""
    with serve(test_settings(**overrides)) as client:
        yield client.base_url


def _stop_all(*processes: CeleryProcess) -> None:
    """Stop every process, even when stopping one of them fails."""
    errors = []
    for process in processes:
        try:
            process.stop()
        except Exception as exc:  # noqa: BLE001 - stop the others, then report
            errors.append(exc)
    if errors:
        raise errors[0]


# -- 1. a worker killed mid-import --------------------------------------------------------


@pytest.mark.slow
def test_an_import_whose_worker_is_sigkilled_is_recovered_and_imports_each_book_once(
    app: Flask,
    make_user: MakeUser,
    *,
    worker: CeleryProcess,
    beat: CeleryProcess,
    database_url: str,
    redis_server: RedisServer,
) -> None:
    _, client = make_user(tier="premium")
    env = worker_env(database_url, redis_server.url)
    doomed = CeleryProcess("worker", env, pool="prefork")
    successor = CeleryProcess("worker", env, pool="prefork")
    processes = (doomed, successor, beat)
    worker.stop()  # only the workers of this test consume
    try:
        doomed.start()
        job = _submit(client, _import(_books(BIG_IMPORT)))
        running = _poll(
            client, job["id"],
            lambda j: j["status"] == JobStatus.RUNNING and j["progress"]["percent"] > 0,
            timeout=120, processes=processes,
        )  # fmt: skip
        assert running["attempts"] == 1, _brief(running)
        doomed.kill()  # the worker and its pool die mid-task; the message stays unacked

        successor.start()
        done = _finished(client, job["id"], timeout=120, processes=processes)
        logs = _logs(*processes)
        assert done["status"] == JobStatus.SUCCEEDED, f"{_brief(done)}{logs}"
        assert done["attempts"] == 2, f"{_brief(done)}{logs}"
        assert done["result"]["created"] == BIG_IMPORT, f"{_brief(done)}{logs}"
        assert done["result"]["skipped"] == 0, _brief(done)
        assert done["error"] is None
        assert _catalog(app) == (BIG_IMPORT, BIG_IMPORT)
        assert _books_total(client) == BIG_IMPORT
    finally:
        try:
            _stop_all(doomed, successor)
        finally:
            worker.start()


# -- 2. Redis down ------------------------------------------------------------------------


@pytest.mark.slow
def test_jobs_accepted_around_a_redis_outage_all_succeed_once_redis_is_back(
    app: Flask,
    make_user: MakeUser,
    worker: CeleryProcess,
    beat: CeleryProcess,
    redis_server: RedisServer,
) -> None:
    if not worker.running:
        worker.start()
    _, client = make_user(tier="premium")
    accepted: dict[str, list[dict[str, Any]]] = {}  # job id -> its books
    # Two longer imports keep the worker busy, so that the small ones wait in the queue
    # and their messages are lost with Redis (which restarts without persistence).
    batches = [_books(10_000, start=0), _books(10_000, start=10_000)]
    batches += [_books(1, start=100_000 + n) for n in range(3)]
    for books in batches:
        accepted[_submit(client, _import(books))["id"]] = books

    answers: list[requests.Response] = []
    redis_server.stop()
    try:
        for n in range(4):
            books = _books(1, start=200_000 + n)
            response = client.post("/api/jobs", json=_import(books))
            _assert_accepted_or_unavailable(response)
            answers.append(response)
            if response.status_code == 202:
                accepted[response.json()["id"]] = books
        during = client.get(f"/api/jobs/{next(iter(accepted))}")
        assert during.status_code in {200, 503}, f"{during.status_code}: {during.text[:2000]}"
        if during.status_code == 503:
            assert_problem(during, 503)
    finally:
        redis_server.start()  # empty: every message and heartbeat is gone

    processes = (worker, beat)
    for job_id, books in accepted.items():
        done = _finished(client, job_id, timeout=120, processes=processes)
        logs = _logs(*processes)
        assert done["status"] == JobStatus.SUCCEEDED, f"{_brief(done)}{logs}"
        assert done["result"]["created"] == len(books), f"{_brief(done)}{logs}"
    with app.app_context():
        jobs_stored = db.session.execute(text("SELECT COUNT(*) FROM jobs")).scalar_one()
    assert jobs_stored == len(accepted), "a 503 answer must not leave a job behind"
    expected = sum(len(books) for books in accepted.values())
    assert _catalog(app) == (expected, expected)
    assert _books_total(client) == expected


# -- 2b and 6. only the broker down -------------------------------------------------------


@pytest.mark.slow
@contextmanager
def _silent_broker() -> Iterator[str]:
    """A broker URL whose server accepts connections and never answers (a hung Redis)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in [*held, listener]:
            connection.close()


def test_a_hung_broker_does_not_hang_a_submit(
    app: Flask, make_user: MakeUser, database_url: str, redis_server: RedisServer
) -> None:
    """The publish gives up (socket timeout): 202, and the job waits for the sweeper."""
    record, _ = make_user(tier="premium")
    with (
        _silent_broker() as broker_url,
        _served(
            database_url=database_url, redis_url=redis_server.url, broker_url=broker_url
        ) as base_url,
    ):
        client = Api(base_url, record["tokens"]["access_token"])
        job = _submit(client, _import(_books(1, start=400_000)))  # the client's timeout: 30 s
    assert job["status"] == JobStatus.QUEUED
    with app.app_context():
        stored = db.session.get(Job, job["id"])
        assert stored is not None
        assert stored.enqueued_at is None, "an unsent message is left to the sweeper"


def test_a_job_the_broker_refused_stays_queued_and_the_sweeper_sends_it_when_it_is_back(
    app: Flask, make_user: MakeUser, database_url: str, redis_server: RedisServer
) -> None:
    record, _ = make_user(tier="premium")
    broker = RedisServer()  # not started yet: nothing listens on its port
    env = worker_env(database_url, redis_server.url, BROKER_URL=broker.url)
    broker_worker = CeleryProcess("worker", env)
    broker_beat = CeleryProcess("beat", env)
    processes = (broker_worker, broker_beat)
    books = _books(3, start=300_000)
    try:
        with _served(
            database_url=database_url, redis_url=redis_server.url, broker_url=broker.url
        ) as base_url:
            client = Api(base_url, record["tokens"]["access_token"])
            job = _submit(client, _import(books))
            assert job["status"] == JobStatus.QUEUED
            with app.app_context():
                stored = db.session.get(Job, job["id"])
                assert stored is not None
                assert stored.enqueued_at is None, "a refused message is left to the sweeper"
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:  # nothing can run it: it waits, durably
                waiting = _get(client, job["id"])
                assert waiting["status"] == JobStatus.QUEUED, _brief(waiting)
                assert waiting["attempts"] == 0
                time.sleep(0.2)

            broker.start()
            broker_worker.start()
            broker_beat.start()
            done = _finished(client, job["id"], timeout=60, processes=processes)
            logs = _logs(*processes)
            assert done["status"] == JobStatus.SUCCEEDED, f"{_brief(done)}{logs}"
            assert done["attempts"] == 1, f"{_brief(done)}{logs}"
            assert done["result"]["created"] == len(books)
            assert "recovered jobs: 1 sent again" in broker_worker.output(tail=None), logs
        assert _catalog(app) == (len(books), len(books))
    finally:
        try:
            _stop_all(broker_beat, broker_worker)
        finally:
            broker.remove()


# -- 3 and 4. cancel ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_job_cancelled_while_no_worker_runs_never_starts(
    app: Flask, make_user: MakeUser, worker: CeleryProcess
) -> None:
    _, client = make_user(tier="premium")
    books = _books(2, start=400_000)
    worker.stop()
    try:
        job = _submit(client, _import(books))
        response = client.post(f"/api/jobs/{job['id']}/cancel")
        assert response.status_code == 202, response.text
        assert response.json()["cancel_requested"] is True
        assert response.json()["status"] == JobStatus.CANCELLED

        worker.start()
        # Sent after the cancelled one, to the same queue: once it has run, the worker has
        # taken the cancelled job's message too.
        probe_books = _books(1, start=400_100)
        probe = _submit(client, _import(probe_books))
        done = _finished(client, probe["id"], timeout=60, processes=(worker,))
        assert done["status"] == JobStatus.SUCCEEDED, f"{_brief(done)}{_logs(worker)}"
        assert app.extensions["folio"].redis.llen(BULK_QUEUE) == 0
    finally:
        if not worker.running:
            worker.start()

    cancelled = _get(client, job["id"])
    assert cancelled["status"] == JobStatus.CANCELLED, f"{_brief(cancelled)}{_logs(worker)}"
    assert cancelled["attempts"] == 0
    assert cancelled["started_at"] is None
    assert cancelled["cancel_requested"] is True
    assert cancelled["result"] is None
    assert _isbns_present(app, books) == 0
    assert _catalog(app) == (1, 1)
    assert _books_total(client) == 1


@pytest.mark.slow
def test_a_running_import_cancelled_leaves_nothing_in_the_catalog(
    app: Flask, make_user: MakeUser, worker: CeleryProcess
) -> None:
    if not worker.running:
        worker.start()
    _, client = make_user(tier="premium")
    job = _submit(client, _import(_books(BIG_IMPORT, start=500_000)))
    _poll(
        client, job["id"],
        lambda j: j["status"] == JobStatus.RUNNING and j["progress"]["percent"] > 0,
        timeout=120, processes=(worker,),
    )  # fmt: skip
    response = client.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 202, response.text[:2000]
    assert response.json()["cancel_requested"] is True

    done = _finished(client, job["id"], timeout=120, processes=(worker,))
    assert done["status"] == JobStatus.CANCELLED, f"{_brief(done)}{_logs(worker)}"
    assert done["cancel_requested"] is True
    assert done["result"] is None
    assert done["attempts"] == 1
    assert _catalog(app) == (0, 0)
    assert _books_total(client) == 0


# -- 5. a job that fails on every attempt -------------------------------------------------


def _sabotage_statements(dialect: str) -> tuple[list[str], list[str]]:
    """DDL making every INSERT into books fail, and the DDL undoing it."""
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION folio_test_sabotage() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'sabotaged'; END; $$",
            "CREATE TRIGGER folio_test_sabotage BEFORE INSERT ON books "
            "FOR EACH ROW EXECUTE FUNCTION folio_test_sabotage()",
        ], [
            "DROP TRIGGER IF EXISTS folio_test_sabotage ON books",
            "DROP FUNCTION IF EXISTS folio_test_sabotage()",
        ]  # fmt: skip
    return [
        "CREATE TRIGGER folio_test_sabotage BEFORE INSERT ON books "
        "BEGIN SELECT RAISE(ABORT, 'sabotaged'); END",
    ], ["DROP TRIGGER IF EXISTS folio_test_sabotage"]  # fmt: skip


def _execute(app: Flask, statements: list[str]) -> None:
    with app.app_context():
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()


@pytest.mark.slow
def test_a_job_failing_on_every_attempt_ends_failed_after_the_last_one(
    app: Flask, make_user: MakeUser, worker: CeleryProcess
) -> None:
    # No beat here: the runner itself sends the job again, after 1 s and then 2 s.
    if not worker.running:
        worker.start()
    _, client = make_user(tier="premium")
    with app.app_context():
        dialect = db.engine.dialect.name
        max_attempts = app.extensions["folio"].settings.job_max_attempts
    assert max_attempts == 3
    sabotage, repair = _sabotage_statements(dialect)
    _execute(app, sabotage)
    try:
        job = _submit(client, _import(_books(3, start=600_000)))
        done = _finished(client, job["id"], timeout=90, processes=(worker,))
    finally:
        _execute(app, repair)
    logs = _logs(worker)
    assert done["status"] == JobStatus.FAILED, f"{_brief(done)}{logs}"
    assert done["attempts"] == max_attempts, f"{_brief(done)}{logs}"
    _assert_problem_object(done["error"], job["id"])
    assert done["result"] is None
    assert done["finished_at"] is not None
    assert done["expires_at"] is not None
    assert _catalog(app) == (0, 0)
    assert _books_total(client) == 0


# -- 7. purge -----------------------------------------------------------------------------


@pytest.mark.slow
def test_beat_purges_an_expired_job_and_its_result_file(
    app: Flask,
    make_user: MakeUser,
    worker: CeleryProcess,
    database_url: str,
    redis_server: RedisServer,
) -> None:
    if not worker.running:
        worker.start()
    _, client = make_user(tier="premium")
    for book in _books(3, start=700_000):
        response = client.post("/api/books", json=book)
        assert response.status_code == 201, response.text
    export = {"type": "books.export", "params": {"format": "csv"}}
    expired, kept = _submit(client, export), _submit(client, export)
    for job in (expired, kept):
        done = _finished(client, job["id"], timeout=60, processes=(worker,))
        assert done["status"] == JobStatus.SUCCEEDED, f"{_brief(done)}{_logs(worker)}"
        assert _chunks(app, job["id"]) > 0
    with app.app_context():
        stored = db.session.get(Job, expired["id"])
        assert stored is not None
        stored.expires_at = utcnow() - dt.timedelta(minutes=1)
        db.session.commit()

    purger = CeleryProcess("beat", worker_env(database_url, redis_server.url,
                                              JOB_PURGE_INTERVAL="1"))  # fmt: skip
    try:
        purger.start()
        deadline = time.monotonic() + 60
        while (status := client.get(f"/api/jobs/{expired['id']}").status_code) != 404:
            assert status == 200, status
            if time.monotonic() > deadline:
                pytest.fail(f"the expired job was not purged{_logs(purger, worker)}")
            time.sleep(0.2)
    finally:
        purger.stop()
    assert _chunks(app, expired["id"]) == 0
    assert _get(client, kept["id"])["status"] == JobStatus.SUCCEEDED
    assert _chunks(app, kept["id"]) > 0
    result = client.get(f"/api/jobs/{kept['id']}/result")
    assert result.status_code == 200, result.text
    assert _isbn13(700_000) in result.text


# -- the sweeper's judgement, without timing ----------------------------------------------
# The races above, made deterministic: the state a sweep finds, then one sweep.


def _running_job(
    app: Flask, owner_id: int, *, attempts: int, started_at: dt.datetime, enqueued_at: dt.datetime
) -> str:
    """A running import as the sweeper would find it (no message, no worker)."""
    params = {"books": _books(1, start=800_000), "on_conflict": "fail", "on_error": "abort"}
    with app.app_context():
        job = Job(
            type="books.import", status=JobStatus.RUNNING, params=params,
            progress=initial_progress(), attempts=attempts, cancel_requested=False,
            owner_id=owner_id, created_at=enqueued_at, enqueued_at=enqueued_at,
            started_at=started_at,
        )  # fmt: skip
        db.session.add(job)
        db.session.commit()
        return str(job.id)


def _sweep(app: Flask, heartbeats: dict[str, float | None]) -> list[str]:
    """One sweep with ``JOB_STALE_AFTER=3`` and empty queues: the ids it would send."""
    settings = app.extensions["folio"].settings.replace(job_stale_after=3, job_requeue_after=3)
    with app.app_context():
        recovery = jobs.recover(
            db.session, heartbeats=heartbeats, queue_depths=dict.fromkeys(QUEUES, 0),
            settings=settings,
        )  # fmt: skip
        db.session.commit()
        return [str(job.id) for job in recovery.to_send]


def test_the_sweeper_does_not_judge_a_new_attempt_by_the_previous_attempts_heartbeat(
    app: Flask, make_user: MakeUser
) -> None:
    """Attempt 1 died 10 s ago (its last heartbeat is still in Redis); attempt 2 was
    claimed just now and has not beaten yet: it must be left alone."""
    record, client = make_user(tier="premium")
    now = utcnow()
    job_id = _running_job(app, record["id"], attempts=2, started_at=now,
                          enqueued_at=now - dt.timedelta(seconds=10))  # fmt: skip
    sent = _sweep(app, {job_id: now.timestamp() - 10})
    job = _get(client, job_id)
    assert (job["status"], job["attempts"]) == (JobStatus.RUNNING, 2), _brief(job)
    assert sent == []


def test_the_sweeper_sends_a_lost_running_job_once(app: Flask, make_user: MakeUser) -> None:
    record, client = make_user(tier="premium")
    now = utcnow()
    job_id = _running_job(app, record["id"], attempts=1,
                          started_at=now - dt.timedelta(seconds=10),
                          enqueued_at=now - dt.timedelta(seconds=20))  # fmt: skip
    sent = _sweep(app, {job_id: now.timestamp() - 10})
    job = _get(client, job_id)
    assert (job["status"], job["attempts"]) == (JobStatus.QUEUED, 1), _brief(job)
    assert sent == [job_id], "one message per recovered job"
