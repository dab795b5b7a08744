"""Cached catalog reads: served from Redis, never stale after a write, never a 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import TEST_SECRET, test_settings
from tests.functional.conftest import PASSWORD, book_payload, rename_behind_the_apps_back
from tests.support.live import Api, serve
from tests.support.servers import RedisServer
from tests.support.web import procfile_web
from tests.support.workers import CeleryProcess

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
READS = ("/api/books?page=1&per_page=5", "/api/books?limit=5", "/api/search?q=dune")


def test_reads_are_served_from_the_cache_until_a_write(app: Flask, user_api: Api, api: Api) -> None:
    book = user_api.post("/api/books", json=book_payload(title="Dune")).json()
    first = [api.get(path).json() for path in (*READS, f"/api/books/{book['id']}")]
    rename_behind_the_apps_back(app, book["id"], "Dune Messiah")
    cached = [api.get(path).json() for path in (*READS, f"/api/books/{book['id']}")]
    assert cached == first  # the database changed, the cache answered
    other = user_api.post("/api/books", json=book_payload(isbn="9780441172719", title="Other"))
    assert other.status_code == 201
    fresh = api.get(f"/api/books/{book['id']}").json()
    assert fresh["title"] == "Dune Messiah"  # any write makes every cached read unreachable
    assert api.get("/api/books?page=1&per_page=5").json()["pagination"]["total_items"] == 2


def test_different_queries_never_share_an_entry(user_api: Api, api: Api) -> None:
    for n, genre in enumerate(("Fiction", "History")):
        isbn = ("9780441172719", "9780451524935")[n]
        user_api.post("/api/books", json=book_payload(isbn=isbn, genre=genre, title=genre))
    fiction = api.get("/api/books?genre=Fiction").json()["items"]
    history = api.get("/api/books?genre=History").json()["items"]
    assert [b["title"] for b in fiction] == ["Fiction"]
    assert [b["title"] for b in history] == ["History"]


def test_reads_fall_through_to_the_database_while_the_cache_is_down(
    app: Flask, user_api: Api, redis_server: RedisServer
) -> None:
    book = user_api.post("/api/books", json=book_payload(title="Dune")).json()
    cache = RedisServer()
    cache.start()
    settings = {"database_url": app.config["SQLALCHEMY_DATABASE_URI"],
                "redis_url": redis_server.url, "cache_redis_url": cache.url}  # fmt: skip
    try:
        with serve(test_settings(**settings)) as client:
            assert client.get("/api/books").status_code == 200  # cached now
            cache.stop()
            rename_behind_the_apps_back(app, book["id"], "Dune Messiah")
            down = [client.get(path) for path in (*READS, f"/api/books/{book['id']}")]
            cache.start()  # back, empty
            back = client.get(f"/api/books/{book['id']}").json()
            rename_behind_the_apps_back(app, book["id"], "Children of Dune")
            cached_again = client.get(f"/api/books/{book['id']}").json()
    finally:
        cache.remove()
    assert [r.status_code for r in down] == [200] * len(down)
    assert down[-1].json()["title"] == "Dune Messiah"  # from the database
    assert back["title"] == "Dune Messiah"
    assert cached_again["title"] == "Dune Messiah"  # caching resumed without a restart


# -- read-your-writes across gunicorn workers ------------------------------------------------


@pytest.fixture
def two_workers(database_url: str, redis_server: RedisServer, tmp_path: Path) -> Iterator[Api]:
    """The Procfile's web line with 2 gunicorn workers sharing one cache."""
    settings = {
        "FOLIO_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": redis_server.url,
        "SECRET_KEY": TEST_SECRET, "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "1",
        "RATELIMIT_ENABLED": "false",
    }  # fmt: skip
    with procfile_web(settings, tmp_path / "web.log") as url:
        yield Api(url)


def _totals(client: Api, reads: int = 6) -> set[int]:
    """Page 1's total as several requests see it (spread over the gunicorn workers)."""
    return {client.get("/api/books?page=1").json()["pagination"]["total_items"]
            for _ in range(reads)}  # fmt: skip


def test_page_one_is_never_stale_after_a_write_in_any_worker(
    two_workers: Api, make_user: MakeUser, worker: CeleryProcess
) -> None:
    user, _ = make_user(tier="premium")
    token = two_workers.post("/api/auth/login", json={"email": user["email"],
                                                      "password": PASSWORD}).json()  # fmt: skip
    client = two_workers.as_user(token["access_token"])
    assert _totals(client) == {0}
    created = client.post("/api/books", json=book_payload(title="Dune")).json()
    assert _totals(client) == {1}
    client.patch(f"/api/books/{created['id']}", json={"title": "Dune Messiah"})
    titles = {client.get("/api/books?page=1").json()["items"][0]["title"] for _ in range(6)}
    assert titles == {"Dune Messiah"}
    assert client.delete(f"/api/books/{created['id']}").status_code == 204
    assert _totals(client) == {0}
    rows = [{"title": f"T{i}", "author": "A"} for i in range(3)]
    job = client.post("/api/jobs", json={"type": "books.import", "params": {"books": rows}})
    done = client.get(f"/api/jobs/{job.json()['id']}?wait=20").json()
    assert done["status"] == "succeeded", done
    assert _totals(client) == {3}
