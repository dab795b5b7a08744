"""Popular books (API.md section 3): views counted per 200 read, flushed by beat, listed."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import text

from shared.broker import send_housekeeping
from shared.db import db
from shared.job_types import FLUSH_VIEWS_TASK, MAINTENANCE_QUEUE
from shared.services.popular import FLUSHING, PENDING
from tests.conftest import test_settings, worker_env
from tests.functional.conftest import add_books
from tests.support.live import Api, serve
from tests.support.servers import RedisServer
from tests.support.workers import CeleryProcess

POPULAR = "/api/books/popular"
DEADLINE = 15.0  # seconds a flush by beat (every second in tests) may take to show


def view(client: Api, book_id: int, times: int = 1) -> dict[str, Any]:
    """Read a book ``times`` times (each a 200, so each a view); its body as last read."""
    body: dict[str, Any] = {}
    for _ in range(times):
        response = client.get(f"/api/books/{book_id}")
        assert response.status_code == 200, response.text
        body = response.json()
    return body


def popular(client: Api) -> list[dict[str, Any]]:
    response = client.get(POPULAR)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def ranking(items: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(item["id"], item["views"]) for item in items]


def popular_until(
    client: Api, expected: list[tuple[int, int]], *, timeout: float = DEADLINE
) -> list[dict[str, Any]]:
    """Poll the popular list until its (id, views) are ``expected``; fail at the deadline."""
    deadline = time.monotonic() + timeout
    items = popular(client)
    while ranking(items) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        items = popular(client)
    assert ranking(items) == expected
    return items


def pending(app: Flask) -> dict[int, int]:
    """Views counted in the main Redis and not yet added to the database."""
    store = app.extensions["folio"].redis
    return {int(book_id): int(n) for book_id, n in store.hgetall(PENDING).items()}


def stored_views(app: Flask) -> dict[int, int]:
    """``books.views`` of every book with at least one view."""
    with app.app_context():
        rows = db.session.execute(text("SELECT id, views FROM books WHERE views > 0")).all()
        db.session.rollback()
    return {row[0]: row[1] for row in rows}


def flushes_done(worker: CeleryProcess) -> int:
    """Views flushes the worker has finished (as its log says)."""
    return len(
        re.findall(rf"{re.escape(FLUSH_VIEWS_TASK)}\[[^]]+\] succeeded", worker.output(tail=None))
    )


def settle_flushes(app: Flask, worker: CeleryProcess) -> None:
    """Wait until no flush is queued or running (one beat sent just before it stopped)."""
    task = re.escape(FLUSH_VIEWS_TASK)
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        log = worker.output(tail=None)
        received = re.findall(rf"{task}\[([^]]+)\] received", log)
        running = [task_id for task_id in received if log.count(f"[{task_id}]") < 2]  # no end yet
        if not running and app.extensions["folio"].redis.llen(MAINTENANCE_QUEUE) == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"a views flush did not end:\n{worker.output()}")


@pytest.fixture
def late_beat(database_url: str, redis_server: RedisServer) -> Iterator[CeleryProcess]:
    """A beat the test starts (and may stop) itself; stopped afterwards in any case."""
    process = CeleryProcess("beat", worker_env(database_url, redis_server.url))
    yield process
    process.stop()


def test_only_200_reads_count_and_beat_lists_the_most_viewed(
    app: Flask, user_api: Api, api: Api, worker: CeleryProcess, beat: CeleryProcess
) -> None:
    a, b, _unviewed = add_books(user_api, "Alpha", "Beta", "Gamma")
    first = api.get(f"/api/books/{a['id']}")
    etag = first.headers["ETag"]
    view(api, a["id"], times=2)
    view(api, b["id"])
    not_modified = api.get(f"/api/books/{a['id']}", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert api.get("/api/books/999999").status_code == 404

    items = popular_until(api, [(a["id"], 3), (b["id"], 1)])
    assert stored_views(app) == {a["id"]: 3, b["id"]: 1}
    shown = [view(api, item["id"]) for item in items]
    # The reads just above counted again; they too reach the database, and Redis empties.
    popular_until(api, [(a["id"], 4), (b["id"], 2)])
    assert pending(app) == {}
    response = api.get(POPULAR)
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["ETag"]
    again = api.get(POPULAR, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    # Each item is the book as GET /api/books/{id} shows it, plus its views (a view
    # is not an update: ``updated_at`` stays).
    assert [{k: v for k, v in item.items() if k != "views"} for item in items] == shown


def test_popular_is_empty_without_views_and_keeps_the_top_ten(
    app: Flask, user_api: Api, api: Api, worker: CeleryProcess, beat: CeleryProcess
) -> None:
    books = add_books(user_api, *(f"Book {n}" for n in range(12)))
    assert api.get(POPULAR).json() == {"items": []}  # books, but no views yet
    counts = [1, 2, 3, 5, 5, 6, 7, 8, 9, 10, 11, 12]  # books 3 and 4 tie: lower id first
    for book, n in zip(books, counts, strict=True):
        view(api, book["id"], times=n)
    order = [11, 10, 9, 8, 7, 6, 5, 3, 4, 2]  # most viewed first; the two least are out
    items = popular_until(api, [(books[i]["id"], counts[i]) for i in order])
    assert [item["title"] for item in items] == [f"Book {i}" for i in order]


def test_views_wait_in_redis_while_beat_is_down(
    app: Flask, user_api: Api, api: Api, worker: CeleryProcess, late_beat: CeleryProcess
) -> None:
    (book,) = add_books(user_api, "Patience")
    view(api, book["id"], times=2)
    time.sleep(1.5)  # longer than a flush interval: nothing flushes without beat
    assert pending(app) == {book["id"]: 2}
    assert stored_views(app) == {}
    assert popular(api) == []
    late_beat.start()
    popular_until(api, [(book["id"], 2)])
    assert stored_views(app) == {book["id"]: 2}
    assert pending(app) == {}


def test_a_deleted_book_leaves_the_list_at_once_and_the_flush_goes_on(
    app: Flask, make_user: Callable[..., tuple[dict[str, Any], Api]], api: Api,
    worker: CeleryProcess, late_beat: CeleryProcess,
) -> None:  # fmt: skip
    _, owner = make_user()
    gone, kept = add_books(owner, "Soon Gone", "Kept")
    view(api, gone["id"], times=2)
    view(api, kept["id"])
    late_beat.start()
    popular_until(api, [(gone["id"], 2), (kept["id"], 1)])
    late_beat.stop()
    settle_flushes(app, worker)
    view(api, gone["id"])  # pending views of a book that is about to go
    view(api, kept["id"], times=2)
    assert owner.delete(f"/api/books/{gone['id']}").status_code == 204
    assert ranking(popular(api)) == [(kept["id"], 1)]  # at once: read-your-writes
    assert pending(app) == {gone["id"]: 1, kept["id"]: 2}
    late_beat.start()
    popular_until(api, [(kept["id"], 3)])
    assert stored_views(app) == {kept["id"]: 3}
    assert pending(app) == {}


def test_two_flushes_at_once_add_each_view_once(
    app: Flask, user_api: Api, api: Api, worker: CeleryProcess
) -> None:
    """Beat's next run while a long flush still writes (or a second beat): no double count."""
    rows = [{"title": f"Book {n}", "author": "Some Author"} for n in range(2000)]
    job = user_api.post("/api/jobs", json={"type": "books.import", "params": {"books": rows}})
    done = user_api.get(f"/api/jobs/{job.json()['id']}?wait=30").json()
    assert done["status"] == "succeeded", done
    with app.app_context():
        ids = db.session.scalars(text("SELECT id FROM books")).all()
        db.session.rollback()
    services = app.extensions["folio"]
    # One view of each book, as 2000 reads would have counted them (a flush this long
    # is what lets the next one start before it ended).
    services.redis.hset(PENDING, mapping=dict.fromkeys(map(str, ids), 1))
    before = flushes_done(worker)
    for _ in range(2):
        assert send_housekeeping(services.celery, FLUSH_VIEWS_TASK)
    deadline = time.monotonic() + DEADLINE
    while flushes_done(worker) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert flushes_done(worker) == before + 2
    assert not services.redis.exists(PENDING, FLUSHING)
    views = stored_views(app)
    total = sum(views.values())
    assert total == len(ids)  # not twice as many
    assert set(views.values()) == {1}
    assert {item["views"] for item in popular(api)} == {1}


def test_reads_still_answer_while_the_main_redis_is_down(app: Flask, user_api: Api) -> None:
    (book,) = add_books(user_api, "Offline")
    main = RedisServer()
    main.start()
    settings = test_settings(database_url=app.config["SQLALCHEMY_DATABASE_URI"],
                             redis_url=main.url)  # fmt: skip
    try:
        with serve(settings) as client:
            up = client.get(f"/api/books/{book['id']}")
            store = redis.Redis.from_url(main.url, decode_responses=True)
            counted = store.hgetall(PENDING)
            store.close()
            main.stop()
            down = client.get(f"/api/books/{book['id']}")
    finally:
        main.remove()
    assert up.status_code == 200
    assert counted == {str(book["id"]): "1"}  # views go to this app's Redis
    assert down.status_code == 200, down.text  # that view is lost, the read is not
    assert down.json() == up.json()
