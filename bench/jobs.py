"""Jobs: submitting, importing and waiting, each against a baseline timed in the same run.

``python -m bench.jobs`` starts its own stack in a temporary folder, as the Procfile runs
it: an embedded ``redis-server``, a SQLite database migrated with ``flask db upgrade``
and one premium user made with ``flask create-user``, gunicorn with ``gunicorn.conf.py``
(2 workers x 4 threads), and a prefork Celery worker (concurrency 2). Every process it
starts is stopped by its PID at the end, and the folder is removed. It measures:

1. ``POST /api/jobs`` (a ``books.report`` job) against ``GET /api/users/me``: requests
   per second of each over a fixed number of requests from 8 threads, each with its own
   keep-alive connection (``http.client``), in interleaved rounds. No worker runs
   during these rounds: after each submit round Celery's purge empties the queues and
   the queued rows are marked cancelled, so every round starts from the same state.
   Goal: ratio >= 0.5.
2. A 100,000-row ``books.import`` job, from before its ``POST`` to the end of the
   ``GET ?wait=30`` that sees it succeeded, against its floor: the same rows validated
   with ``book_create_schema`` plus a Core bulk insert of them in batches of 1000, timed
   in this process on a fresh database of the same schema. Every import and every floor
   gets a fresh database (a copy of the migrated one). Goal: ratio >= 0.7.
3. A trivial job (``books.report`` on an empty catalog): ``POST``, then at once
   ``GET /api/jobs/{id}?wait=10``; median and p90 from before the POST to the end of the
   GET. Goal: median under 25 ms. One ``GET /api/users/me`` and a Celery ``ping`` of the
   worker (a round trip through the broker that runs no task), timed between the jobs,
   give the scale.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import http.client
import io
import itertools
import json
import os
import platform
import pstats
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import create_engine, insert

from shared.broker import make_producer
from shared.config import PROJECT_ROOT, Settings
from shared.db import json_dumps, json_loads, utcnow
from shared.isbn import to_isbn13
from shared.models import Book, author_key
from shared.schemas.book import book_create_schema
from shared.services import seed
from tests.support.servers import RedisServer, free_port, wait_for_port

PROCFILE = dict(
    line.split(": ", 1) for line in (PROJECT_ROOT / "Procfile").read_text().splitlines() if line
)
BIN = Path(sys.executable).parent
SECRET = "bench-jobs-secret-0123456789abcdef-0123456789"  # noqa: S105 - a throwaway stack
EMAIL, USERNAME, PASSWORD = "bench@folio.test", "bench", "bench-password-123"
WORKER_QUEUES = "default,bulk,maintenance"
BATCH = 1000  # rows per insert, as shared.services.imports does
REPORT_JOB = {"type": "books.report", "params": {}}
TERMINAL = ("succeeded", "failed", "cancelled")
WARM_UP = 5  # trivial jobs run before the timed ones (both web workers, both pool slots)
GOAL_SUBMIT, GOAL_IMPORT, GOAL_LATENCY_MS = 0.5, 0.7, 25.0


# -- the stack ----------------------------------------------------------------------------


@dataclass
class Process:
    """A process this bench started, in its own session, logging to a file."""

    popen: subprocess.Popen[bytes]
    log: Path

    def output(self, tail: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-tail:]

    def stop(self) -> None:
        """SIGTERM to the process (it stops its own children), SIGKILL to its group if stuck."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)  # the group of our own process
                self.popen.wait(timeout=10)


def start_process(name: str, argv: list[str], env: dict[str, str], folder: Path) -> Process:
    log = folder / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(  # noqa: S603 - our own fixed argv
            argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return Process(popen, log)


def stack_env(database: Path, redis_url: str, web_threads: int) -> dict[str, str]:
    """The settings of every process of a stack (gunicorn gets its port later)."""
    return os.environ | {
        "FOLIO_ENV": "testing", "DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET, "JOBS_ACTIVE_PREMIUM": "1000000", "ACCESS_TOKEN_TTL": "3600",
        "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": str(web_threads),
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }  # fmt: skip


def flask_cli(env: dict[str, str], *args: str) -> None:
    argv = [str(BIN / "flask"), "--app", "api", *args]
    subprocess.run(argv, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True,  # noqa: S603
                   timeout=120)  # fmt: skip


def build_template(folder: Path, redis_url: str) -> Path:
    """A migrated database with one premium user; every stack and floor gets a copy."""
    path = folder / "template.db"
    env = stack_env(path, redis_url, 1)
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "create-user", "--email", EMAIL, "--username", USERNAME,
              "--password", PASSWORD)  # fmt: skip
    connection = sqlite3.connect(path)
    try:
        with connection:  # commits
            connection.execute("UPDATE users SET tier = 'premium' WHERE email = ?", (EMAIL,))
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    finally:
        connection.close()
    return path


def fresh_database(template: Path, folder: Path, name: str) -> Path:
    path = folder / f"{name}.db"
    shutil.copyfile(template, path)
    return path


@dataclass
class Stack:
    """gunicorn, and a Celery worker once started, on one database."""

    database: Path
    env: dict[str, str]
    folder: Path
    base_url: str = ""
    token: str = ""
    web: Process | None = None
    worker: Process | None = None

    def start_web(self, attempts: int = 3) -> None:
        """gunicorn on a free port, logged in; another free port if that one was taken.

        Other test suites on this machine pick free ports too: the one chosen may be
        taken before gunicorn binds it, and something else would answer on it.
        """
        failure = ""
        for attempt in range(1, attempts + 1):
            port = free_port()
            self.env["PORT"] = str(port)
            argv = ["bash", "-c", f"exec {PROCFILE['web']}"]
            self.web = start_process(f"web-{self.database.stem}-{attempt}", argv, self.env,
                                     self.folder)  # fmt: skip
            self.base_url = f"http://127.0.0.1:{port}"
            try:
                wait_for_port(port, timeout=60)
                self.token = self._login()
                return
            except (TimeoutError, requests.RequestException, AssertionError) as exc:
                failure = f"{exc}\n{self.web.output()}"
                self.web.stop()
                self.web = None
        raise RuntimeError(f"gunicorn did not start:\n{failure}")

    def _login(self) -> str:
        deadline = time.monotonic() + 30
        while True:  # the master listens before its workers have booted
            assert self.web is not None
            assert self.web.popen.poll() is None, "gunicorn exited"
            with contextlib.suppress(requests.RequestException, ValueError):
                health = requests.get(f"{self.base_url}/health", timeout=10)
                if health.ok and health.json().get("status") == "healthy":
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("GET /health never answered healthy")
            time.sleep(0.2)
        login = requests.post(f"{self.base_url}/api/auth/login",
                              json={"email": EMAIL, "password": PASSWORD}, timeout=30)  # fmt: skip
        assert login.status_code == 200, login.text[:300]
        return str(login.json()["access_token"])

    def start_worker(self) -> None:
        """The Procfile's worker with a prefork pool of 2, named; no mingle or gossip (start-up)."""
        argv = [str(BIN / "celery"), "--app", "worker.main", "worker", "--queues", WORKER_QUEUES,
                "--pool", "prefork", "--concurrency", "2", "--loglevel", "INFO",
                "--hostname", f"bench-{os.getpid()}-{self.database.stem}@%h",
                "--without-mingle", "--without-gossip"]  # fmt: skip
        self.worker = start_process(f"worker-{self.database.stem}", argv, self.env, self.folder)
        deadline = time.monotonic() + 60
        while " ready." not in self.worker.output(tail=100_000):
            if self.worker.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{self.worker.output()}")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in (self.worker, self.web):
            if process is not None:
                process.stop()
        self.worker = self.web = None

    def client(self) -> Client:
        return Client(self.base_url, self.token)

    def job_times(self, job_id: str) -> tuple[float, float]:
        """(created -> started, started -> finished) in seconds, from the jobs table."""
        with contextlib.closing(sqlite3.connect(self.database)) as connection:
            row = connection.execute(
                "SELECT created_at, started_at, finished_at FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        created, started, finished = (dt.datetime.fromisoformat(value) for value in row)
        return (started - created).total_seconds(), (finished - started).total_seconds()


@contextmanager
def running_stack(
    template: Path, folder: Path, redis_url: str, name: str, *, web_threads: int, worker: bool
) -> Iterator[Stack]:
    database = fresh_database(template, folder, name)
    stack = Stack(database, stack_env(database, redis_url, web_threads), folder)
    try:
        stack.start_web()
        if worker:
            stack.start_worker()
        yield stack
    finally:
        stack.stop()


class Client:
    """One keep-alive HTTP/1.1 connection with the bearer token (``http.client``).

    ``requests`` costs about 2 ms of CPU per request on this machine, as much as some
    of the requests measured: a lighter client leaves the cores to the server.
    """

    IDLE = 3.0  # seconds; gunicorn closes a keep-alive connection idle for 5 (keepalive)

    def __init__(self, base_url: str, token: str, *, timeout: float = 300) -> None:
        url = urlsplit(base_url)
        self.host, self.port, self.timeout = url.hostname or "127.0.0.1", url.port, timeout
        self.headers = {"Authorization": f"Bearer {token}"}
        self.connection: http.client.HTTPConnection | None = None
        self.last_used = 0.0

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = self.headers | ({"Content-Type": "application/json"} if body else {})
        for attempt in (1, 2):  # once more if the server closed an idle connection
            if self.connection is None or time.monotonic() - self.last_used > self.IDLE:
                self.close()
                self.connection = http.client.HTTPConnection(self.host, self.port,
                                                             timeout=self.timeout)  # fmt: skip
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
                continue
            self.last_used = time.monotonic()
            if response.will_close:
                self.close()
            return response.status, data
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        status, data = self.request(method, path, body)
        return status, json.loads(data)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# -- 1. submit throughput -----------------------------------------------------------------


class LoadGenerator:
    """``clients`` threads, each with its own keep-alive connection."""

    def __init__(self, stack: Stack, clients: int) -> None:
        self.clients = [stack.client() for _ in range(clients)]
        self.pool = ThreadPoolExecutor(clients)

    def run(self, method: str, path: str, body: bytes | None, total: int) -> tuple[float, Counter]:
        """Send ``total`` requests as fast as the clients can; returns (requests/s, statuses)."""
        counter = itertools.count()  # shared: each request takes the next number

        def send(client: Client) -> Counter:
            statuses: Counter = Counter()
            while next(counter) < total:
                status, _ = client.request(method, path, body)
                statuses[status] += 1
            return statuses

        started = time.perf_counter()
        results = list(self.pool.map(send, self.clients))
        elapsed = time.perf_counter() - started
        return total / elapsed, sum(results, Counter())

    def close(self) -> None:
        self.pool.shutdown()
        for client in self.clients:
            client.close()


def reset_queues(stack: Stack) -> int:
    """Empty the broker's queues (Celery's purge) and cancel the jobs they held."""
    producer = make_producer(Settings.from_env(stack.env))
    try:
        purged = int(producer.control.purge() or 0)
    finally:
        producer.close()
    with contextlib.closing(sqlite3.connect(stack.database, timeout=30)) as connection, connection:
        connection.execute("UPDATE jobs SET status = 'cancelled' WHERE status = 'queued'")
    return purged


@dataclass
class Throughput:
    submit: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.submit) / statistics.median(self.bare)


def measure_throughput(stack: Stack, *, per_round: int, rounds: int, clients: int) -> Throughput:
    load = LoadGenerator(stack, clients)
    submit_url, bare_url = "/api/jobs", "/api/users/me"
    body = json.dumps(REPORT_JOB).encode()
    result = Throughput()
    try:
        for method, url, data, status in (("GET", bare_url, None, 200),
                                          ("POST", submit_url, body, 202)):  # fmt: skip
            _, statuses = load.run(method, url, data, 4 * clients)  # warm-up: connections
            assert set(statuses) == {status}, statuses
        reset_queues(stack)
        for index in range(rounds):
            # Alternate which goes first, so a drift in the machine's load hits both alike.
            for kind in ("bare", "submit") if index % 2 == 0 else ("submit", "bare"):
                if kind == "bare":
                    rate, statuses = load.run("GET", bare_url, None, per_round)
                    assert set(statuses) == {200}, statuses
                    result.bare.append(rate)
                else:
                    rate, statuses = load.run("POST", submit_url, body, per_round)
                    assert set(statuses) == {202}, statuses
                    result.submit.append(rate)
                    purged = reset_queues(stack)
                    assert purged == per_round, (purged, per_round)
    finally:
        load.close()
    return result


# -- 2. import throughput -----------------------------------------------------------------


def import_body(count: int) -> bytes:
    """``POST /api/jobs`` of ``count`` valid rows with unique ISBN-13s (979...)."""
    rows = [
        {"title": b["title"], "author": b["author"], "isbn": b["isbn"],
         "published_year": b["published_year"], "genre": b["genre"], "price": b["price"]}
        for b in seed.generate_books(count, start=1, owner_id=None, seed=11)
    ]  # fmt: skip
    return json_dumps({"type": "books.import", "params": {"books": rows}}).encode()


@dataclass
class ImportRun:
    seconds: float  # before the POST to the end of the GET that saw "succeeded"
    post_seconds: float  # the POST alone, to its 202 read by the client
    queued_seconds: float  # created_at -> started_at (the jobs table)
    running_seconds: float  # started_at -> finished_at (the jobs table)
    gets: int


def run_import_job(stack: Stack, body: bytes, rows: int) -> ImportRun:
    client = stack.client()
    try:
        started = time.perf_counter()
        status, job = client.json("POST", "/api/jobs", body)
        post_seconds = time.perf_counter() - started
        assert status == 202, (status, str(job)[:500])
        gets = 0
        while job["status"] not in TERMINAL:
            gets += 1
            status, job = client.json("GET", f"/api/jobs/{job['id']}?wait=30")
            assert status == 200, (status, str(job)[:500])
        seconds = time.perf_counter() - started
    finally:
        client.close()
    assert job["status"] == "succeeded", job.get("error")
    assert job["result"]["created"] == rows, job["result"]
    queued, running = stack.job_times(job["id"])
    return ImportRun(seconds, post_seconds, queued, running, gets)


@dataclass
class Floor:
    validate_seconds: float
    insert_seconds: float

    @property
    def seconds(self) -> float:
        return self.validate_seconds + self.insert_seconds


def import_floor(body: bytes, database: Path) -> Floor:
    """Validate every row, then insert them all in batches into ``database``'s empty books.

    The rows are read from the JSON as the worker reads them from the jobs table
    (``shared.db.json_loads``: prices as exact decimals); the insert sets the derived
    columns as ``shared.services.imports`` does, in one transaction, with the same
    multi-row INSERT statements.
    """
    rows = json_loads(body)["params"]["books"]
    started = time.perf_counter()
    valid = [book_create_schema.load(row) for row in rows]
    validated = time.perf_counter()
    engine = create_engine(f"sqlite:///{database}")  # shared.db's PRAGMAs apply to it too
    try:
        with engine.begin() as connection:
            owner_id = connection.exec_driver_sql(
                "SELECT id FROM users WHERE email = ?", (EMAIL,)
            ).scalar_one()
            now = utcnow()
            for start in range(0, len(valid), BATCH):
                batch = [
                    {"title": d["title"], "author": d["author"],
                     "author_key": author_key(d["author"]), "isbn": d["isbn"],
                     "isbn13": None if d["isbn"] is None else to_isbn13(d["isbn"]),
                     "published_year": d["published_year"], "genre": d["genre"],
                     "price": d["price"], "owner_id": owner_id, "created_at": now,
                     "updated_at": now}
                    for d in valid[start : start + BATCH]
                ]  # fmt: skip
                # The fastest Core bulk insert on SQLite: one multi-row INSERT per batch
                # (RETURNING turns on SQLAlchemy's "insertmanyvalues"), as the import does.
                connection.execute(insert(Book.__table__).returning(Book.__table__.c.id), batch)
        inserted = time.perf_counter()
        with engine.connect() as connection:
            count = connection.exec_driver_sql("SELECT count(*) FROM books").scalar_one()
        assert count == len(rows), count
    finally:
        engine.dispose()
    return Floor(validated - started, inserted - validated)


def measure_imports(
    template: Path, folder: Path, redis_url: str, *, rows: int, rounds: int, web_threads: int
) -> tuple[list[ImportRun], list[Floor]]:
    body = import_body(rows)
    runs: list[ImportRun] = []
    floors: list[Floor] = []
    for index in range(rounds):
        floor_db = fresh_database(template, folder, f"floor-{index}")
        with running_stack(template, folder, redis_url, f"import-{index}",
                           web_threads=web_threads, worker=True) as stack:  # fmt: skip
            # Alternate which goes first (the stack idles while the floor is timed).
            if index % 2 == 0:
                floors.append(import_floor(body, floor_db))
                runs.append(run_import_job(stack, body, rows))
            else:
                runs.append(run_import_job(stack, body, rows))
                floors.append(import_floor(body, floor_db))
        for path in folder.glob(f"*-{index}.db*"):
            path.unlink()
    return runs, floors


# -- 3. latency of a trivial job ----------------------------------------------------------


@dataclass
class Latency:
    total_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    queued_ms: list[float] = field(default_factory=list)  # created_at -> started_at
    running_ms: list[float] = field(default_factory=list)  # started_at -> finished_at
    ping_ms: list[float] = field(default_factory=list)
    bare_ms: list[float] = field(default_factory=list)  # one GET /api/users/me


def measure_latency(stack: Stack, *, runs: int) -> Latency:
    body = json.dumps(REPORT_JOB).encode()
    producer = make_producer(Settings.from_env(stack.env))
    client = stack.client()
    result = Latency()
    done: list[str] = []
    try:
        for index in range(WARM_UP + runs):
            started = time.perf_counter()
            status, job = client.json("POST", "/api/jobs", body)
            posted = time.perf_counter()
            assert status == 202, (status, job)
            status, job = client.json("GET", f"/api/jobs/{job['id']}?wait=10")
            ended = time.perf_counter()
            assert status == 200, (status, job)
            assert job["status"] == "succeeded", job
            ping_started = time.perf_counter()
            replies = producer.control.ping(timeout=2, limit=1)  # the only worker
            ping_ms = (time.perf_counter() - ping_started) * 1000
            assert replies, "the worker did not answer the ping"
            bare_started = time.perf_counter()
            status, _ = client.request("GET", "/api/users/me")
            bare_ms = (time.perf_counter() - bare_started) * 1000
            assert status == 200, status
            if index >= WARM_UP:
                result.bare_ms.append(bare_ms)
                result.total_ms.append((ended - started) * 1000)
                result.post_ms.append((posted - started) * 1000)
                result.ping_ms.append(ping_ms)
                done.append(job["id"])
    finally:
        client.close()
        producer.close()
    for job_id in done:
        queued, running = stack.job_times(job_id)
        result.queued_ms.append(queued * 1000)
        result.running_ms.append(running * 1000)
    return result


# -- the report ---------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def throughput_lines(result: Throughput, args: argparse.Namespace) -> tuple[str, list[str]]:
    submit, bare = statistics.median(result.submit), statistics.median(result.bare)
    row = (f"| `POST /api/jobs` (books.report), req/s | {submit:.0f} | {bare:.0f} "
           f"(`GET /api/users/me`) | {result.ratio:.2f} | >= {GOAL_SUBMIT} "
           f"{verdict(result.ratio >= GOAL_SUBMIT)} |")  # fmt: skip
    return row, [
        f"1. {args.rounds} rounds of {args.requests} requests each, {args.clients} keep-alive "
        f"clients (http.client), gunicorn 2 workers x {args.web_threads} threads, no worker "
        "consuming (queues purged after each submit round):",
        "   submit req/s: " + ", ".join(f"{r:.0f}" for r in result.submit),
        "   bare req/s:   " + ", ".join(f"{r:.0f}" for r in result.bare),
    ]


def import_lines(result: tuple[list[ImportRun], list[Floor]], rows: int) -> tuple[str, list[str]]:
    runs, floors = result
    job_rate = rows / statistics.median(r.seconds for r in runs)
    floor_rate = rows / statistics.median(f.seconds for f in floors)
    ratio = job_rate / floor_rate
    row = (f"| {rows:,}-row import, rows/s | {job_rate:,.0f} | {floor_rate:,.0f} "
           f"(validate + insert) | {ratio:.2f} | >= {GOAL_IMPORT} "
           f"{verdict(ratio >= GOAL_IMPORT)} |")  # fmt: skip
    lines = [f"2. {len(runs)} runs of {rows:,} rows, a fresh database each:"]
    for run, floor in zip(runs, floors, strict=True):
        lines.append(
            f"   job {run.seconds:.1f} s (POST {run.post_seconds:.1f} s; in the jobs table: "
            f"queued {run.queued_seconds:.1f} s, running {run.running_seconds:.1f} s; "
            f"{run.gets} GET); floor {floor.seconds:.1f} s (validate "
            f"{floor.validate_seconds:.1f} s + insert {floor.insert_seconds:.1f} s)"
        )
    return row, lines


def latency_lines(result: Latency) -> tuple[str, list[str]]:
    median = statistics.median(result.total_ms)
    bare = statistics.median(result.bare_ms)
    row = (f"| trivial job, POST to succeeded (`?wait=`), median ms | {median:.1f} "
           f"| {bare:.1f} (one `GET /api/users/me`) | {median / bare:.1f} "
           f"| < {GOAL_LATENCY_MS:.0f} ms {verdict(median < GOAL_LATENCY_MS)} |")  # fmt: skip

    def spread(values: list[float]) -> str:
        return f"median {statistics.median(values):.1f}, p90 {percentile(values, 0.9):.1f}"

    return row, [
        f"3. {len(result.total_ms)} trivial jobs, one at a time, after {WARM_UP} untimed (ms):",
        f"   POST to succeeded {spread(result.total_ms)}; the POST alone {spread(result.post_ms)}",
        f"   in the jobs table: created -> started {spread(result.queued_ms)}; started -> "
        f"finished {spread(result.running_ms)}",
        f"   for scale: one GET /api/users/me {spread(result.bare_ms)}; Celery ping of the "
        f"worker {spread(result.ping_ms)}",
    ]


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,  # noqa: S607
                            capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    return (f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit or '?'}; "
            f"{len(os.sched_getaffinity(0))} cores; Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}; load average {load}")  # fmt: skip


# -- optional: where an import's time goes ------------------------------------------------


def profile_import(template: Path, folder: Path, rows: int) -> str:
    """cProfile of ``imports.import_books`` in this process, on a fresh database."""
    from flask import Flask  # noqa: PLC0415 - only the profile needs an app

    from shared.db import db, init_db  # noqa: PLC0415
    from shared.models import Job, JobStatus, User  # noqa: PLC0415
    from shared.services import imports  # noqa: PLC0415

    class Quiet:
        def progress(self, *_: Any, **__: Any) -> None:
            pass

        def store_chunk(self, data: bytes) -> None:
            pass

    database = fresh_database(template, folder, "profile")
    app = Flask("bench-profile")
    init_db(app, Settings(env="testing", database_url=f"sqlite:///{database}"))
    params = json_loads(import_body(rows))["params"] | {"on_conflict": "fail",
                                                        "on_error": "abort"}  # fmt: skip
    profiler = cProfile.Profile()
    with app.app_context():
        owner = db.session.query(User).filter_by(email=EMAIL).one()
        job = Job(type="books.import", status=JobStatus.RUNNING, params=params, progress={},
                  attempts=1, cancel_requested=False, owner_id=owner.id)  # fmt: skip
        started = time.perf_counter()
        profiler.enable()
        imports.import_books(db.session, job, Quiet())
        db.session.commit()
        profiler.disable()
        elapsed = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    return f"import_books in this process, under cProfile: {elapsed:.1f} s\n{out.getvalue()}"


# -- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="123", help="which measures to run (default: 123)")
    parser.add_argument("--requests", type=int, default=300, help="(1) requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="(1) rounds of each")
    parser.add_argument("--clients", type=int, default=8, help="(1) keep-alive clients")
    parser.add_argument("--web-threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--rows", type=int, default=100_000, help="(2) rows per import")
    parser.add_argument("--imports", type=int, default=3, help="(2) import runs and floors")
    parser.add_argument("--latency-runs", type=int, default=50, help="(3) trivial jobs")
    parser.add_argument("--profile", action="store_true", help="then cProfile import_books")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"start: {machine()}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="folio-bench-jobs-"))
    redis = RedisServer()
    parts: dict[str, tuple[str, list[str]]] = {}

    def done(name: str) -> None:
        print(f"{name} measured ({time.perf_counter() - started:.0f} s)", flush=True)

    try:
        redis.start()
        template = build_template(folder, redis.url)
        if "1" in args.only or "3" in args.only:
            with running_stack(template, folder, redis.url, "main", web_threads=args.web_threads,
                               worker=False) as stack:  # fmt: skip
                if "1" in args.only:
                    throughput = measure_throughput(
                        stack, per_round=args.requests, rounds=args.rounds, clients=args.clients
                    )
                    parts["1"] = throughput_lines(throughput, args)
                    done("1. submit throughput")
                if "3" in args.only:
                    stack.start_worker()
                    parts["3"] = latency_lines(measure_latency(stack, runs=args.latency_runs))
                    done("3. trivial job latency")
        if "2" in args.only:
            imported = measure_imports(
                template, folder, redis.url, rows=args.rows, rounds=args.imports,
                web_threads=args.web_threads,
            )  # fmt: skip
            parts["2"] = import_lines(imported, args.rows)
            done("2. import throughput")
        print(
            "\n| measure | figure | baseline | ratio | goal |\n| --- | ---: | ---: | ---: | --- |"
        )
        for key in sorted(parts):
            print(parts[key][0])
        print()
        for key in sorted(parts):
            print("\n".join(parts[key][1]))
        if args.profile:
            print("\n" + profile_import(template, folder, args.rows))
    finally:
        redis.remove()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nend: {machine()}; total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
