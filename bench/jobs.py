"""Jobs: submitting, importing and waiting, each against a baseline timed in the same run.

``python -m bench.jobs`` starts its own stack in a temporary folder, as the Procfile runs
it: an embedded ``redis-server``, a SQLite database migrated with ``flask db upgrade``,
gunicorn with ``gunicorn.conf.py`` (2 workers x 4 threads), and a prefork Celery worker
(concurrency 2). Every process it starts is stopped by its PID at the end. It measures:

1. ``POST /api/jobs`` (a ``books.report`` job) against ``GET /api/users/me``, the same
   token and the same keep-alive clients: requests per second of each over a fixed
   number of requests, in interleaved rounds. No worker runs during these rounds:
   Celery's purge empties the queues after each round and the queued rows are marked
   cancelled, so every round starts from the same state. Goal: ratio >= 0.5.
2. A 100,000-row ``books.import`` job, submit to ``succeeded`` (``GET ?wait=30``
   repeatedly), against its floor: the same rows validated with ``book_create_schema``
   plus a Core bulk insert of them, timed in this process on a fresh database of the
   same schema. Every import runs on a fresh database. Goal: ratio >= 0.7.
3. A trivial job (``books.report`` on an empty catalog), ``POST`` then at once
   ``GET /api/jobs/{id}?wait=10``: median and p90 from before the POST to the end of the
   GET. Goal: median under 25 ms. A Celery ``ping`` to the worker (a broker round trip
   that runs no task) gives the scale.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, insert

from shared.broker import make_producer
from shared.config import PROJECT_ROOT, Settings
from shared.db import utcnow
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
WEB_WORKERS, WEB_THREADS = 2, 4
CLIENTS = 8  # keep-alive sessions of the load generator, one thread each
BATCH = 1000  # rows per insert, as shared.services.imports does
REPORT_JOB = {"type": "books.report", "params": {}}
GOALS = {"submit": 0.5, "import": 0.7, "latency_ms": 25.0}


# -- the stack ----------------------------------------------------------------------------


@dataclass
class Process:
    """A process this bench started, in its own session, logging to a file."""

    name: str
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
    return Process(name, popen, log)


def stack_env(database: Path, redis_url: str, port: int) -> dict[str, str]:
    return os.environ | {
        "FOLIO_ENV": "testing", "DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET, "JOBS_ACTIVE_PREMIUM": "1000000", "ACCESS_TOKEN_TTL": "3600",
        "PORT": str(port), "WEB_CONCURRENCY": str(WEB_WORKERS),
        "GUNICORN_THREADS": str(WEB_THREADS), "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }  # fmt: skip


def flask_cli(env: dict[str, str], *args: str) -> None:
    argv = [str(BIN / "flask"), "--app", "api", *args]
    subprocess.run(argv, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True,  # noqa: S603
                   timeout=120)  # fmt: skip


def build_template(folder: Path, redis_url: str) -> Path:
    """A migrated database with one premium user; each stack starts on a copy of it."""
    path = folder / "template.db"
    env = stack_env(path, redis_url, 0)
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "create-user", "--email", EMAIL, "--username", USERNAME,
              "--password", PASSWORD)  # fmt: skip
    connection = sqlite3.connect(path)
    try:
        with connection:  # commits
            connection.execute("UPDATE users SET tier = 'premium' WHERE email = ?", (EMAIL,))
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the main file
    finally:
        connection.close()
    return path


def fresh_database(template: Path, folder: Path, name: str) -> Path:
    path = folder / f"{name}.db"
    shutil.copyfile(template, path)
    return path


@dataclass
class Stack:
    """gunicorn (and optionally a Celery worker) on one database."""

    database: Path
    env: dict[str, str]
    folder: Path
    base_url: str = ""
    token: str = ""
    web: Process | None = None
    worker: Process | None = None
    hostname: str = ""

    def start_web(self, attempts: int = 3) -> None:
        """gunicorn on a free port, logged in; another free port if that one was taken.

        Other test suites on this machine pick free ports too: the one chosen may be
        taken before gunicorn binds it, and something else would answer on it.
        """
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
        self.hostname = f"bench-{os.getpid()}-{self.database.stem}@%h"
        argv = [str(BIN / "celery"), "--app", "worker.main", "worker", "--queues",
                "default,bulk,maintenance", "--pool", "prefork", "--concurrency", "2",
                "--loglevel", "INFO", "--hostname", self.hostname,
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

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def running_stack(
    template: Path, folder: Path, redis_url: str, name: str, *, worker: bool
) -> Iterator[Stack]:
    database = fresh_database(template, folder, name)
    stack = Stack(database, stack_env(database, redis_url, 0), folder)
    try:
        stack.start_web()
        if worker:
            stack.start_worker()
        yield stack
    finally:
        stack.stop()


# -- 1. submit throughput -----------------------------------------------------------------


class LoadGenerator:
    """``CLIENTS`` threads, each with its own keep-alive ``requests.Session``."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.sessions = []
        for _ in range(CLIENTS):
            session = requests.Session()
            session.headers.update(headers)
            self.sessions.append(session)
        self.pool = ThreadPoolExecutor(CLIENTS)

    def run(self, method: str, url: str, body: bytes | None, total: int) -> tuple[float, Counter]:
        """Send ``total`` requests as fast as the clients can; returns (requests/s, statuses)."""
        counter = itertools.count()
        headers = {"Content-Type": "application/json"} if body is not None else {}

        def client(session: requests.Session) -> Counter:
            statuses: Counter = Counter()
            while next(counter) < total:
                response = session.request(method, url, data=body, headers=headers, timeout=60)
                statuses[response.status_code] += 1
            return statuses

        started = time.perf_counter()
        results = list(self.pool.map(client, self.sessions))
        elapsed = time.perf_counter() - started
        return total / elapsed, sum(results, Counter())

    def close(self) -> None:
        self.pool.shutdown()
        for session in self.sessions:
            session.close()


def reset_queues(stack: Stack, settings: Settings) -> int:
    """Empty the broker's queues (Celery's purge) and cancel the jobs they held."""
    producer = make_producer(settings)
    purged = producer.control.purge()
    with sqlite3.connect(stack.database, timeout=30) as connection:
        connection.execute("UPDATE jobs SET status = 'cancelled' WHERE status = 'queued'")
    return int(purged or 0)


@dataclass
class Throughput:
    submit: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.submit) / statistics.median(self.bare)


def measure_throughput(stack: Stack, *, requests_per_round: int, rounds: int) -> Throughput:
    settings = Settings.from_env(stack.env)
    load = LoadGenerator(stack.headers())
    submit_url, bare_url = f"{stack.base_url}/api/jobs", f"{stack.base_url}/api/users/me"
    body = json.dumps(REPORT_JOB).encode()
    result = Throughput()
    try:
        for method, url, data, status in (("GET", bare_url, None, 200),
                                          ("POST", submit_url, body, 202)):  # fmt: skip
            _, statuses = load.run(method, url, data, 4 * CLIENTS)  # warm-up: connections, JIT
            assert set(statuses) == {status}, statuses
        reset_queues(stack, settings)
        for index in range(rounds):
            # Alternate which goes first, so a drift in the machine's load hits both alike.
            order = ["bare", "submit"] if index % 2 == 0 else ["submit", "bare"]
            for kind in order:
                if kind == "bare":
                    rate, statuses = load.run("GET", bare_url, None, requests_per_round)
                    assert set(statuses) == {200}, statuses
                    result.bare.append(rate)
                else:
                    rate, statuses = load.run("POST", submit_url, body, requests_per_round)
                    assert set(statuses) == {202}, statuses
                    result.submit.append(rate)
                    purged = reset_queues(stack, settings)
                    assert purged == requests_per_round, (purged, requests_per_round)
    finally:
        load.close()
    return result


# -- 2. import throughput -----------------------------------------------------------------


def import_rows(count: int) -> bytes:
    """``count`` valid API rows with unique ISBN-13s (979...), as a JSON request body."""
    rows = [
        {"title": b["title"], "author": b["author"], "isbn": b["isbn"],
         "published_year": b["published_year"], "genre": b["genre"], "price": float(b["price"])}
        for b in seed.generate_books(count, start=1, owner_id=None, seed=11)
    ]  # fmt: skip
    return json.dumps({"type": "books.import", "params": {"books": rows}}).encode()


@dataclass
class ImportRun:
    seconds: float  # submit to the end of the GET that saw "succeeded"
    post_seconds: float  # the POST alone (its 202)
    queued_seconds: float  # created_at -> started_at, from the jobs table
    running_seconds: float  # started_at -> finished_at, from the jobs table
    polls: int


def run_import_job(stack: Stack, body: bytes, rows: int) -> ImportRun:
    session = requests.Session()
    session.headers.update(stack.headers() | {"Content-Type": "application/json"})
    started = time.perf_counter()
    submitted = session.post(f"{stack.base_url}/api/jobs", data=body, timeout=120)
    post_seconds = time.perf_counter() - started
    assert submitted.status_code == 202, submitted.text[:500]
    job_url = f"{stack.base_url}/api/jobs/{submitted.json()['id']}"
    polls = 0
    while True:
        polls += 1
        job = session.get(job_url, params={"wait": 30}, timeout=120).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
    seconds = time.perf_counter() - started
    session.close()
    assert job["status"] == "succeeded", job.get("error")
    assert job["result"]["created"] == rows, job["result"]
    with sqlite3.connect(stack.database) as connection:
        created, started_at, finished_at = connection.execute(
            "SELECT created_at, started_at, finished_at FROM jobs WHERE id = ?", (job["id"],)
        ).fetchone()
    times = [dt.datetime.fromisoformat(value) for value in (created, started_at, finished_at)]
    return ImportRun(seconds, post_seconds, (times[1] - times[0]).total_seconds(),
                     (times[2] - times[1]).total_seconds(), polls)  # fmt: skip


@dataclass
class Floor:
    validate_seconds: float
    insert_seconds: float

    @property
    def seconds(self) -> float:
        return self.validate_seconds + self.insert_seconds


def import_floor(body: bytes, database: Path) -> Floor:
    """Validate every row, then insert them all in batches into ``database``'s empty books.

    The rows are read back from JSON with the standard library, as the worker gets them
    from the jobs table (prices as floats).
    """
    rows = json.loads(body)["params"]["books"]
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
            table = Book.__table__
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
                connection.execute(insert(table), batch)
        inserted = time.perf_counter()
        with engine.connect() as connection:
            count = connection.exec_driver_sql("SELECT count(*) FROM books").scalar_one()
        assert count == len(rows), count
    finally:
        engine.dispose()
    return Floor(validated - started, inserted - validated)


def measure_imports(
    template: Path, folder: Path, redis_url: str, *, rows: int, rounds: int
) -> tuple[list[ImportRun], list[Floor]]:
    body = import_rows(rows)
    runs: list[ImportRun] = []
    floors: list[Floor] = []
    for index in range(rounds):
        floor_db = fresh_database(template, folder, f"floor-{index}")
        with running_stack(template, folder, redis_url, f"import-{index}", worker=True) as stack:
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
    ping_ms: list[float] = field(default_factory=list)


def measure_latency(stack: Stack, *, runs: int) -> Latency:
    session = requests.Session()
    session.headers.update(stack.headers())
    body = json.dumps(REPORT_JOB).encode()
    post_headers = {"Content-Type": "application/json"}
    producer = make_producer(Settings.from_env(stack.env))
    result = Latency()
    try:
        for index in range(runs + 5):  # the first 5 warm both web workers and both pool slots
            started = time.perf_counter()
            posted = session.post(f"{stack.base_url}/api/jobs", data=body, headers=post_headers,
                                  timeout=30)  # fmt: skip
            post_done = time.perf_counter()
            job = session.get(f"{stack.base_url}/api/jobs/{posted.json()['id']}",
                              params={"wait": 10}, timeout=30).json()  # fmt: skip
            ended = time.perf_counter()
            assert job["status"] == "succeeded", job
            ping_started = time.perf_counter()
            replies = producer.control.ping(timeout=2, limit=1)  # the only worker
            ping_ms = (time.perf_counter() - ping_started) * 1000
            assert replies, "no ping reply"
            if index >= 5:
                result.total_ms.append((ended - started) * 1000)
                result.post_ms.append((post_done - started) * 1000)
                result.ping_ms.append(ping_ms)
    finally:
        session.close()
        producer.close()
    return result


# -- the report ---------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(
    throughput: Throughput,
    imports: tuple[list[ImportRun], list[Floor]],
    latency: Latency,
    *,
    rows: int,
    requests_per_round: int,
) -> str:
    runs, floors = imports
    job_rate = rows / statistics.median(r.seconds for r in runs)
    floor_rate = rows / statistics.median(f.seconds for f in floors)
    import_ratio = job_rate / floor_rate
    median_ms = statistics.median(latency.total_ms)
    lines = [
        "| measure | figure | baseline | ratio | goal |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| `POST /api/jobs` (books.report), req/s | {statistics.median(throughput.submit):.0f} "
        f"| {statistics.median(throughput.bare):.0f} (`GET /api/users/me`) "
        f"| {throughput.ratio:.2f} | >= {GOALS['submit']} {verdict(throughput.ratio >= 0.5)} |",
        f"| {rows:,}-row import, rows/s | {job_rate:,.0f} | {floor_rate:,.0f} (validate + insert) "
        f"| {import_ratio:.2f} | >= {GOALS['import']} {verdict(import_ratio >= 0.7)} |",
        f"| trivial job, submit to succeeded, median ms | {median_ms:.1f} "
        f"| {statistics.median(latency.ping_ms):.1f} (Celery ping) | - "
        f"| < {GOALS['latency_ms']:.0f} ms {verdict(median_ms < GOALS['latency_ms'])} |",
        "",
        f"1. per round ({requests_per_round} requests, {CLIENTS} clients, gunicorn "
        f"{WEB_WORKERS} workers x {WEB_THREADS} threads, no worker consuming; queue purged "
        "after each round):",
        "   submit req/s " + ", ".join(f"{r:.0f}" for r in throughput.submit),
        "   bare req/s   " + ", ".join(f"{r:.0f}" for r in throughput.bare),
        f"2. per run ({rows:,} rows, fresh database each):",
    ]
    for run, floor in zip(runs, floors, strict=True):
        lines.append(
            f"   job {run.seconds:.2f} s (POST {run.post_seconds:.2f} s, queued "
            f"{run.queued_seconds:.2f} s, running {run.running_seconds:.2f} s, "
            f"{run.polls} GET); floor {floor.seconds:.2f} s (validate "
            f"{floor.validate_seconds:.2f} s + insert {floor.insert_seconds:.2f} s)"
        )
    lines += [
        f"3. {len(latency.total_ms)} runs: submit to succeeded median {median_ms:.1f} ms, "
        f"p90 {percentile(latency.total_ms, 0.9):.1f} ms (POST alone: median "
        f"{statistics.median(latency.post_ms):.1f} ms); Celery ping median "
        f"{statistics.median(latency.ping_ms):.1f} ms, p90 "
        f"{percentile(latency.ping_ms, 0.9):.1f} ms",
    ]
    return "\n".join(lines)


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores "
            f"(nproc {len(os.sched_getaffinity(0))}); Python {platform.python_version()}; "
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
    params = json.loads(import_rows(rows))["params"] | {"on_conflict": "fail", "on_error": "abort"}
    with app.app_context():
        owner = db.session.query(User).filter_by(email=EMAIL).one()
        job = Job(type="books.import", status=JobStatus.RUNNING, params=params, progress={},
                  attempts=1, cancel_requested=False, owner_id=owner.id)  # fmt: skip
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        imports.import_books(db.session, job, Quiet())
        db.session.commit()
        profiler.disable()
        elapsed = time.perf_counter() - started
        db.engine.dispose()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    return f"import_books in process: {elapsed:.2f} s for {rows:,} rows\n{out.getvalue()}"


# -- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per round (1)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each (1)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per import (2)")
    parser.add_argument("--imports", type=int, default=3, help="import runs and floors (2)")
    parser.add_argument("--latency-runs", type=int, default=50, help="trivial jobs (3)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the import")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="folio-bench-jobs-"))
    redis = RedisServer()
    try:
        redis.start()
        template = build_template(folder, redis.url)
        with ExitStack() as stacks:
            stack = stacks.enter_context(
                running_stack(template, folder, redis.url, "main", worker=False)
            )
            throughput = measure_throughput(stack, requests_per_round=args.requests,
                                            rounds=args.rounds)  # fmt: skip
            print(f"1. done ({time.perf_counter() - started:.0f} s)", flush=True)
            stack.start_worker()
            latency = measure_latency(stack, runs=args.latency_runs)
            print(f"3. done ({time.perf_counter() - started:.0f} s)", flush=True)
        imports = measure_imports(template, folder, redis.url, rows=args.rows,
                                  rounds=args.imports)  # fmt: skip
        print(f"2. done ({time.perf_counter() - started:.0f} s)\n", flush=True)
        print(report(throughput, imports, latency, rows=args.rows,
                     requests_per_round=args.requests))  # fmt: skip
        if args.profile:
            print("\n" + profile_import(template, folder, args.rows))
    finally:
        redis.remove()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nmachine at the end: {machine()}\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
