"""``GET /metrics`` (API.md section 7): Prometheus text that adds up across gunicorn workers."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from shared.db import db
from shared.models import Book, Job, JobStatus
from shared.services.job_signals import DONE_CHANNEL_PREFIX
from shared.services.queues import queue_depths
from tests.conftest import TEST_SECRET, test_settings, worker_env
from tests.functional.conftest import assert_problem
from tests.support.live import Api, serve
from tests.support.servers import RedisServer, free_port
from tests.support.web import procfile_web
from tests.support.workers import CeleryProcess

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
REPORT = {"type": "books.report", "params": {}}
BAD_IMPORT = {
    "type": "books.import",
    "params": {"books": [{"title": "", "author": "Nobody"}], "on_error": "abort"},
}
BOOK = "/api/books/<id:book_id>"
JOB = "/api/jobs/<uuid:job_id>"
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
HOUSEKEPT = re.compile(r"Task folio\.maintenance\.drop_dead_cache\[[^\]]+\] succeeded")


def parse(text: str) -> tuple[Samples, dict[str, tuple[str, str]]]:
    """Every sample by (name, labels), and each family's (type, help)."""
    samples: Samples = {}
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = (family.type, family.documentation)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, families


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def by(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """The series of ``name`` keyed by the values of the labels ``keys``."""
    return {tuple(dict(labels)[key] for key in keys): v
            for labels, v in series(samples, name).items()}  # fmt: skip


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(base_url: str) -> tuple[Samples, dict[str, tuple[str, str]]]:
    """One scrape on a new connection (any worker may answer it)."""
    response = requests.get(f"{base_url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response.headers["Cache-Control"] == "no-store"
    return parse(response.text)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


# -- one process (the Flask dev server, the test server) -----------------------------------


def test_metrics_answer_without_gunicorn_and_do_not_count_themselves(api: Api) -> None:
    before, families = parse(api.get("/metrics").text)
    books = [api.get("/api/books") for _ in range(3)]
    missing = api.get("/api/nowhere/42")
    after, _ = parse(api.get("/metrics").text)
    assert [r.status_code for r in books] == [200, 200, 200]
    assert missing.status_code == 404

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("folio_http_requests_total", method="GET", route="/api/books",
                 status="200") == 3  # fmt: skip
    assert delta("folio_http_requests_total", method="GET", route="<unmatched>",
                 status="404") == 1  # fmt: skip
    assert not any(dict(labels)["route"] == "/metrics"
                   for labels in series(after, "folio_http_requests_total"))  # fmt: skip
    assert delta("folio_http_request_duration_seconds_count", method="GET",
                 route="/api/books") == 3  # fmt: skip
    assert delta("folio_cache_reads_total", kind="books.list", result="miss") == 1
    assert delta("folio_cache_reads_total", kind="books.list", result="hit") == 2
    for source in ("database", "redis", "broker"):
        assert value(after, "folio_metrics_source_up", source=source) == 1
    assert value(after, "folio_queue_depth", queue="default") == 0
    assert value(after, "folio_jobs", type="books.import", status="queued") == 0
    assert families["folio_http_requests"][0] == "counter"
    assert "route pattern" in families["folio_http_requests"][1]


def test_metrics_speak_openmetrics_when_asked(api: Api) -> None:
    response = api.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_metrics_answer_200_with_what_they_have_while_redis_and_the_database_are_down(
    redis_server: RedisServer,
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    dead_database = f"postgresql://folio@127.0.0.1:{free_port()}/folio"
    with serve(test_settings(database_url=dead_database, redis_url=dead_redis)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    samples, families = parse(response.text)
    for source in ("database", "redis", "broker"):
        assert value(samples, "folio_metrics_source_up", source=source) == 0
    assert "folio_jobs" not in families
    assert "folio_queue_depth" not in families
    assert "folio_http_requests" in families  # the counters are still there


def test_storage_errors_of_limits_and_cache_are_counted_while_redis_is_down(
    app: Flask, api: Api
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = test_settings(database_url=app.config["SQLALCHEMY_DATABASE_URI"],
                             redis_url=dead_redis, ratelimit_enabled=True)  # fmt: skip
    before, _ = parse(api.get("/metrics").text)  # one registry per process: deltas
    with serve(settings) as client:
        reads = [client.get("/api/books") for _ in range(2)]
        after, _ = parse(client.get("/metrics").text)
    assert [r.status_code for r in reads] == [200, 200]  # limits open, reads from the database

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("folio_rate_limit_storage_errors_total") == 2
    assert delta("folio_cache_storage_errors_total") == 4  # each read: its page, its total
    assert delta("folio_cache_reads_total", kind="books.list", result="miss") == 2
    assert delta("folio_cache_reads_total", kind="books.list", result="hit") == 0


def test_metrics_are_not_rate_limited(app: Flask, redis_server: RedisServer) -> None:
    settings = test_settings(database_url=app.config["SQLALCHEMY_DATABASE_URI"],
                             redis_url=redis_server.url, ratelimit_enabled=True,
                             ratelimit_default="1 per minute")  # fmt: skip
    with serve(settings) as client:
        scrapes = [client.get("/metrics") for _ in range(3)]
        limited = [client.get("/api/books") for _ in range(2)]
    assert [r.status_code for r in scrapes] == [200, 200, 200]
    assert "X-RateLimit-Limit" not in scrapes[0].headers
    assert [r.status_code for r in limited] == [200, 429]
    assert_problem(limited[1], 429)


# -- two gunicorn workers, a real Celery worker --------------------------------------------


@dataclass
class Stack:
    url: str
    broker: redis.Redis
    worker: CeleryProcess
    metrics_dir: Path
    token: str
    sent: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def send(self, method: str, path: str, route: str, **kwargs: Any) -> requests.Response:
        """One request on a new connection (so that any worker may take it), tallied."""
        headers = {"Authorization": f"Bearer {self.token}"} | kwargs.pop("headers", {})
        response = requests.request(method, self.url + path, headers=headers, timeout=30,
                                    **kwargs)  # fmt: skip
        counted_as = method if method in METHODS else "OTHER"
        self.sent[(counted_as, route, str(response.status_code))] += 1
        return response

    def submit(self, body: dict[str, Any]) -> str:
        response = self.send("POST", "/api/jobs", "/api/jobs", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])


def write_stale_counts(metrics_dir: Path) -> None:
    """What a previous gunicorn left in the directory: emptied when the next one starts."""
    stale = MmapedDict(str(metrics_dir / "counter_1.db"))
    labels = (["method", "route", "status"], ["GET", "/api/books", "200"])
    key = mmap_key("folio_http_requests", "folio_http_requests_total", *labels, "stale")
    stale.write_value(key, 1000.0, 0.0)
    stale.close()


@pytest.fixture
def stack(database_url: str, tmp_path: Path, make_user: MakeUser) -> Iterator[Stack]:
    """The Procfile's web line with 2 sync gunicorn workers (one request at a time each,
    so that a held request forces the next ones onto the other worker), its own Redis,
    and a Celery worker on that Redis."""
    _, client = make_user(tier="premium")
    token = client.session.headers["Authorization"].removeprefix("Bearer ")
    redis_server = RedisServer()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    write_stale_counts(metrics_dir)
    settings = {
        "FOLIO_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": redis_server.url,
        "SECRET_KEY": TEST_SECRET, "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "1",
        "RATELIMIT_SEARCH": "2 per minute", "RATELIMIT_DEFAULT": "1000 per minute",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }  # fmt: skip
    # The worker shares the web's environment here, directory included: it must keep out.
    shared_env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    worker = CeleryProcess("worker", worker_env(database_url, redis_server.url, **shared_env))
    broker = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        redis_server.start()
        with procfile_web(settings, tmp_path / "web.log") as url:
            worker.start()  # after gunicorn emptied the directory: a file of its own would stay
            yield Stack(url, broker, worker, metrics_dir, str(token))
    finally:
        worker.stop()
        broker.close()
        redis_server.remove()


def job_statuses(app: Flask) -> dict[str, str]:
    with app.app_context():
        rows = db.session.execute(select(Job.id, Job.status)).all()
        db.session.rollback()
    return dict(rows)


def http_requests_per_process(metrics_dir: Path) -> dict[str, float]:
    """Requests counted by each gunicorn worker, from its own file (pid -> count)."""
    counted = {}
    for path in metrics_dir.glob("counter_*.db"):
        families = MultiProcessCollector.merge([str(path)])
        counted[path.stem.split("_")[1]] = sum(
            sample.value for family in families for sample in family.samples
            if sample.name == "folio_http_requests_total"
        )  # fmt: skip
    return counted


def test_counters_add_up_across_two_gunicorn_workers_after_traffic_and_jobs(
    app: Flask, stack: Stack
) -> None:
    # Jobs that end on the worker: one succeeds, one import succeeds, one fails.
    csv = stack.send("POST", "/api/books/imports", "/api/books/imports",
                     data="title,author\nDune,Frank Herbert\n",
                     headers={"Content-Type": "text/csv"})  # fmt: skip
    assert csv.status_code == 202, csv.text
    ran = [stack.submit(REPORT), csv.json()["id"], stack.submit(BAD_IMPORT)]
    wait_until(lambda: all(job_statuses(app).get(j) in JobStatus.TERMINAL for j in ran), "jobs")
    # The import's success sends a cleanup to the maintenance queue: let it run first.
    wait_until(lambda: bool(HOUSEKEPT.search(stack.worker.output(tail=None))), "housekeeping")
    wait_until(lambda: sum(series(scrape(stack.url)[0],
                                  "folio_job_duration_seconds_count").values()) == 3,
               "durations")  # fmt: skip
    assert not any(queue_depths(stack.broker).values())
    stack.worker.stop()  # from now on, messages stay in their queues

    # One request held by one gunicorn worker: everything else meanwhile goes to the other.
    held_job = stack.submit(REPORT)
    held: dict[str, requests.Response] = {}
    holder = threading.Thread(target=lambda: held.update(
        answer=stack.send("GET", f"/api/jobs/{held_job}?wait=20", JOB)))  # fmt: skip
    holder.start()
    try:
        wait_until(lambda: stack.broker.pubsub_numsub(DONE_CHANNEL_PREFIX + held_job)[0][1] == 1,
                   "the held request")  # fmt: skip
        with app.app_context():
            book_id = db.session.scalar(select(Book.id).where(Book.title == "Dune"))
            db.session.rollback()
        reads = [stack.send("GET", "/api/books", "/api/books") for _ in range(4)]
        reads += [stack.send("GET", f"/api/books/{book_id}", BOOK) for _ in range(2)]
        missing = [stack.send("GET", "/api/books/999999", BOOK),
                   stack.send("GET", "/api/nowhere", "<unmatched>"),
                   stack.send("GET", "/api/nowhere/else", "<unmatched>")]  # fmt: skip
        odd = stack.send("BREW", "/api/books", "<unmatched>")  # counted as method OTHER
        searches = [stack.send("GET", "/api/search?q=dune", "/api/search") for _ in range(3)]
        cancel = stack.send("POST", f"/api/jobs/{held_job}/cancel", f"{JOB}/cancel")
    finally:
        holder.join(timeout=30)
    queued_job = stack.submit(REPORT)

    assert [r.status_code for r in reads] == [200] * 6
    assert [r.status_code for r in missing] == [404, 404, 404]
    assert odd.status_code == 405
    assert [r.status_code for r in searches] == [200, 200, 429]
    assert cancel.status_code == 202, cancel.text
    assert held["answer"].json()["status"] == "cancelled"
    assert job_statuses(app)[queued_job] == "queued"

    scrapes = [scrape(stack.url) for _ in range(4)]
    samples, families = scrapes[0]
    assert all(s == samples for s, _ in scrapes[1:])  # every worker answers the same totals

    # Requests: exactly what was sent, by method, route pattern and status.
    counted = by(samples, "folio_http_requests_total", "method", "route", "status")
    assert counted == dict(stack.sent)
    per_process = http_requests_per_process(stack.metrics_dir)
    assert len(per_process) == 2, per_process  # the two gunicorn workers, no Celery process
    assert all(per_process.values()), per_process  # both served
    assert sum(per_process.values()) == sum(stack.sent.values())
    by_route: Counter[tuple[str, str]] = Counter()
    for (method, route, _), count in stack.sent.items():
        by_route[(method, route)] += count
    for (method, route), count in by_route.items():
        labels = {"method": method, "route": route}
        assert value(samples, "folio_http_request_duration_seconds_count", **labels) == count
        assert value(samples, "folio_http_request_duration_seconds_bucket", le="+Inf",
                     **labels) == count  # fmt: skip
    assert families["folio_http_requests"][1].startswith("HTTP requests answered")

    # Jobs: the rows, the durations of those that ran, the messages left waiting.
    expected_jobs = {("books.report", "succeeded"): 1, ("books.import", "succeeded"): 1,
                     ("books.import", "failed"): 1, ("books.report", "cancelled"): 1,
                     ("books.report", "queued"): 1}  # fmt: skip
    jobs = by(samples, "folio_jobs", "type", "status")
    assert {k: v for k, v in jobs.items() if v} == expected_jobs
    assert len(jobs) == 25  # every type and status, 0 included
    durations = by(samples, "folio_job_duration_seconds_count", "type", "status")
    assert durations == {("books.report", "succeeded"): 1, ("books.import", "succeeded"): 1,
                         ("books.import", "failed"): 1}  # fmt: skip
    depths = by(samples, "folio_queue_depth", "queue")
    assert depths == {("default",): 2, ("bulk",): 0, ("maintenance",): 0}  # the cancelled one's too

    # Cache reads (one miss each, then hits; the missing book is a miss), the 429, no errors.
    cache = by(samples, "folio_cache_reads_total", "kind", "result")
    assert cache == {("books.list", "miss"): 1, ("books.list", "hit"): 3,
                     ("books.get", "miss"): 2, ("books.get", "hit"): 1,
                     ("search", "miss"): 1, ("search", "hit"): 1}  # fmt: skip
    assert series(samples, "folio_rate_limit_rejections_total") == {
        frozenset({("scope", "search.search")}): 1
    }
    assert value(samples, "folio_cache_storage_errors_total") == 0
    assert value(samples, "folio_rate_limit_storage_errors_total") == 0
    assert {value(samples, "folio_metrics_source_up", source=s)
            for s in ("database", "redis", "broker")} == {1}  # fmt: skip
