"""The cache's jobs and operations (API.md sections 4 and 7): ``cache.invalidate``,
``cache.warm``, ``POST /api/admin/cache/clear``, dead entries after an import, cached
reports; and the stampede lock of ``CatalogCache`` against a real Redis."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import text

from shared.db import db
from shared.services.catalog_cache import CACHE_PREFIX, CatalogCache, JsonRedisCache, cache_client
from shared.services.catalog_reads import BOOKS_LIST, CatalogRead
from shared.services.popular import PENDING
from tests.conftest import worker_env
from tests.functional.conftest import add_books, assert_problem, rename_behind_the_apps_back
from tests.support.live import Api
from tests.support.servers import RedisServer
from tests.support.workers import CeleryProcess

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
VERSION_KEY = "folio:cache:books:version"
HOT_KEY = "folio:cache:hot"
ENTRY = re.compile(r"^folio:cache:books:v(\d+):")
PAGE = "/api/books?page=1&per_page=5"
DEADLINE = 15.0


# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def cache_store(app: Flask) -> Iterator[redis.Redis]:
    """A client of the cache Redis (its own database of the session's redis-server)."""
    client = redis.Redis.from_url(
        app.extensions["folio"].settings.cache_redis_url, decode_responses=True
    )
    yield client
    client.close()


def cache_keys(store: redis.Redis) -> set[str]:
    return set(store.scan_iter(match="folio:cache:*"))


def entries(store: redis.Redis) -> set[str]:
    """Cached catalog reads and reports: ``folio:cache:books:v<version>:<name>``."""
    return {key for key in cache_keys(store) if ENTRY.match(key)}


def entry_versions(store: redis.Redis | set[str]) -> set[int]:
    """The versions of the entries in ``store`` (or in a set of keys)."""
    keys = store if isinstance(store, set) else cache_keys(store)
    return {int(match[1]) for key in keys if (match := ENTRY.match(key))}


def version(store: redis.Redis) -> int:
    return int(store.get(VERSION_KEY) or 0)


def run(client: Api, job_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """Submit a job, wait for its end, and return it (it must have succeeded)."""
    response = client.post("/api/jobs", json={"type": job_type, "params": params})
    assert response.status_code == 202, response.text
    done = client.get(f"/api/jobs/{response.json()['id']}?wait=20")
    assert done.status_code == 200, done.text
    job: dict[str, Any] = done.json()
    assert job["status"] == "succeeded", job
    return job


def title_of_first(client: Api, path: str = PAGE) -> str:
    title: str = client.get(path).json()["items"][0]["title"]
    return title


# -- cache.invalidate and cache.warm: who, and which params ---------------------------------


def test_a_demoted_admin_cannot_retry_an_admin_only_job(
    app: Flask, make_user: MakeUser, worker: CeleryProcess
) -> None:
    user, client = make_user(role="admin")
    job = run(client, "cache.invalidate", {"scope": "books"})
    with app.app_context():  # as if it had failed, and its owner had lost the admin role
        db.session.execute(text("UPDATE jobs SET status = 'failed' WHERE id = :i"),
                           {"i": job["id"]})  # fmt: skip
        db.session.execute(text("UPDATE users SET role = 'user' WHERE id = :i"), {"i": user["id"]})
        db.session.commit()
    assert_problem(client.post(f"/api/jobs/{job['id']}/retry"), 403)
    listed = client.get("/api/jobs").json()["items"]
    assert [item["id"] for item in listed] == [job["id"]]  # no new job


@pytest.mark.parametrize(
    ("job_type", "params"), [("cache.warm", {}), ("cache.invalidate", {"scope": "books"})]
)
def test_cache_jobs_are_for_admins_only(
    user_api: Api, job_type: str, params: dict[str, Any]
) -> None:
    response = user_api.post("/api/jobs", json={"type": job_type, "params": params})
    assert_problem(response, 403)
    assert user_api.get("/api/jobs").json()["pagination"]["total_items"] == 0


@pytest.mark.parametrize(
    ("job_type", "params", "field"),
    [
        ("cache.invalidate", {"scope": "nope"}, "params.scope"),
        ("cache.invalidate", {}, "params.scope"),
        ("cache.invalidate", {"scope": "books", "x": 1}, "params.x"),
        ("cache.warm", {"x": 1}, "params.x"),
    ],
)
def test_invalid_cache_job_params_are_400(
    admin_api: Api, job_type: str, params: dict[str, Any], field: str
) -> None:
    response = admin_api.post("/api/jobs", json={"type": job_type, "params": params})
    problem = assert_problem(response, 400, kind="validation-error")
    assert field in problem["errors"], problem["errors"]
    assert admin_api.get("/api/jobs").json()["pagination"]["total_items"] == 0


# -- cache.invalidate -------------------------------------------------------------------------


def test_invalidate_books_drops_every_entry_and_reads_recompute(
    app: Flask, admin_api: Api, api: Api, cache_store: redis.Redis, worker: CeleryProcess
) -> None:
    book, _ = add_books(admin_api, "Dune", "Emma")
    for path in (PAGE, f"/api/books/{book['id']}", "/api/search?q=dune", "/api/books"):
        assert api.get(path).status_code == 200
    cached = entries(cache_store)  # the reads, and the totals their pages share
    assert len(cached) > 4
    before = version(cache_store)
    rename_behind_the_apps_back(app, book["id"], "Dune Messiah")
    assert title_of_first(api) == "Dune"  # still the cache

    job = run(admin_api, "cache.invalidate", {"scope": "books"})

    assert job["result"] == {"scope": "books", "removed": len(cached)}
    assert not cached & cache_keys(cache_store)
    assert HOT_KEY in cache_keys(cache_store)  # scope books keeps the hot reads
    assert version(cache_store) > before  # the version key stays and moves on
    assert title_of_first(api) == "Dune Messiah"
    assert api.get(f"/api/books/{book['id']}").json()["title"] == "Dune Messiah"


def test_invalidate_all_also_forgets_the_hot_reads_but_never_the_version(
    api: Api, admin_api: Api, cache_store: redis.Redis, worker: CeleryProcess
) -> None:
    add_books(admin_api, "Dune")
    for path in (PAGE, "/api/books", "/api/books/popular"):
        api.get(path)
    before = version(cache_store)
    assert HOT_KEY in cache_keys(cache_store)
    present = entries(cache_store)
    assert len(present) > 3

    job = run(admin_api, "cache.invalidate", {"scope": "all"})

    assert job["result"] == {"scope": "all", "removed": len(present)}  # entries, not the set
    assert cache_keys(cache_store) == {VERSION_KEY}
    assert version(cache_store) > before
    again = run(admin_api, "cache.invalidate", {"scope": "all"})
    assert again["result"] == {"scope": "all", "removed": 0}
    assert cache_keys(cache_store) == {VERSION_KEY}


# -- cache.warm -----------------------------------------------------------------------------


def test_warm_recomputes_the_hot_reads_and_the_web_serves_them(
    app: Flask, make_user: MakeUser, api: Api, cache_store: redis.Redis, worker: CeleryProcess
) -> None:
    _, owner = make_user()
    _, admin_api = make_user(role="admin")
    first, kept, gone = add_books(owner, "Dune", "Emma", "Gone")
    for path in (PAGE, PAGE, f"/api/books/{kept['id']}", f"/api/books/{gone['id']}"):
        assert api.get(path).status_code == 200
    assert owner.patch(f"/api/books/{first['id']}", json={"title": "Warmed"}).status_code == 200
    assert owner.delete(f"/api/books/{gone['id']}").status_code == 204
    stale = entries(cache_store)  # all of an older version now

    job = run(admin_api, "cache.warm", {})

    keys = job["result"]["keys"]
    assert job["result"]["warmed"] == len(keys)
    assert {"GET /api/books", "GET /api/books/popular", "GET /api/books?page=1&per_page=5",
            f"GET /api/books/{kept['id']}"} <= set(keys)  # fmt: skip
    assert f"GET /api/books/{gone['id']}" not in keys  # no longer a 200: skipped, no failure
    assert len(keys) == len(set(keys))
    assert entry_versions(cache_store) - entry_versions(stale) == {version(cache_store)}
    rename_behind_the_apps_back(app, first["id"], "Renamed After The Warm")
    assert title_of_first(api) == "Warmed"  # the worker's entry, served by the web
    assert title_of_first(api, "/api/books") == "Warmed"
    assert api.get(f"/api/books/{gone['id']}").status_code == 404


@pytest.fixture
def warming_beat(database_url: str, redis_server: RedisServer) -> Iterator[CeleryProcess]:
    """Beat with the cache warming every second (``CACHE_WARM_INTERVAL=1``)."""
    env = worker_env(database_url, redis_server.url, CACHE_WARM_INTERVAL="1")
    process = CeleryProcess("beat", env)
    process.start()
    yield process
    process.stop()


@pytest.mark.usefixtures("worker", "warming_beat")
def test_beat_warms_the_hot_reads_on_its_schedule(
    app: Flask, user_api: Api, api: Api, cache_store: redis.Redis
) -> None:
    (book,) = add_books(user_api, "Dune")
    assert title_of_first(api) == "Dune"  # a hot read now
    assert user_api.patch(f"/api/books/{book['id']}", json={"title": "Warmed"}).status_code == 200
    read = CatalogRead.of(BOOKS_LIST, "/api/books", {"page": "1", "per_page": "5"})
    entry = f"folio:cache:books:v{version(cache_store)}:r:{read.digest}"
    deadline = time.monotonic() + DEADLINE
    while not cache_store.exists(entry) and time.monotonic() < deadline:
        time.sleep(0.1)  # nobody reads: only beat's warming can store this version's page
    assert cache_store.exists(entry)
    rename_behind_the_apps_back(app, book["id"], "Renamed After The Warm")
    assert title_of_first(api) == "Warmed"  # computed by the warming, served by the web


def test_warm_of_an_empty_cache_fills_the_first_page_and_popular(
    app: Flask, admin_api: Api, api: Api, worker: CeleryProcess
) -> None:
    (book,) = add_books(admin_api, "Dune")
    job = run(admin_api, "cache.warm", {})
    assert job["result"] == {"warmed": 2, "keys": ["GET /api/books", "GET /api/books/popular"]}
    rename_behind_the_apps_back(app, book["id"], "Dune Messiah")
    assert title_of_first(api, "/api/books") == "Dune"


# -- POST /api/admin/cache/clear ------------------------------------------------------------


def test_cache_clear_is_for_admins(api: Api, user_api: Api) -> None:
    assert_problem(api.post("/api/admin/cache/clear"), 401)
    assert_problem(user_api.post("/api/admin/cache/clear"), 403)


def test_cache_clear_removes_the_entries_and_nothing_of_the_main_redis(
    app: Flask, admin_api: Api, api: Api, cache_store: redis.Redis
) -> None:
    (book,) = add_books(admin_api, "Dune")
    for path in (PAGE, f"/api/books/{book['id']}", "/api/search?q=dune"):
        assert api.get(path).status_code == 200
    main = app.extensions["folio"].redis
    main.set("folio:limits:test-marker", "1")
    cache_store.set("folio:not-the-cache", "1")  # the cache's database, outside its prefix
    assert main.hgetall(PENDING) == {str(book["id"]): "1"}  # the view above
    present = entries(cache_store)
    assert len(present) > 3
    assert HOT_KEY in cache_keys(cache_store)  # removed too, but not an entry
    before = version(cache_store)
    rename_behind_the_apps_back(app, book["id"], "Dune Messiah")

    response = admin_api.post("/api/admin/cache/clear")

    assert response.status_code == 200, response.text
    assert response.json() == {"removed": len(present)}
    assert cache_keys(cache_store) == {VERSION_KEY}
    assert version(cache_store) > before
    assert cache_store.get("folio:not-the-cache") == "1"
    assert main.get("folio:limits:test-marker") == "1"
    assert main.hgetall(PENDING) == {str(book["id"]): "1"}
    assert title_of_first(api) == "Dune Messiah"
    refilled = entries(cache_store)  # the read just above
    assert refilled
    assert admin_api.post("/api/admin/cache/clear").json() == {"removed": len(refilled)}


# -- dead entries after an import -----------------------------------------------------------


def test_a_succeeded_import_is_reported_only_after_the_catalog_version_moved(
    app: Flask, user_api: Api, api: Api, cache_store: redis.Redis, worker: CeleryProcess
) -> None:
    """As if the worker had died between its commit and its bump: the web bumps first."""
    job = run(user_api, "books.import", {"books": [{"title": "Imported", "author": "A"}]})
    mark = f"folio:cache:changed:{job['id']}"
    assert cache_store.exists(mark)  # the worker's bump covered it
    before = version(cache_store)
    assert user_api.get(f"/api/jobs/{job['id']}").status_code == 200
    assert version(cache_store) == before  # covered: no second bump
    cache_store.delete(mark)  # now the worker "never bumped" for it
    (other,) = add_books(user_api, "Other")
    assert {b["title"] for b in api.get(PAGE).json()["items"]} == {"Imported", "Other"}
    rename_behind_the_apps_back(app, other["id"], "Unseen")  # only a bump can show it now
    assert {b["title"] for b in api.get(PAGE).json()["items"]} == {"Imported", "Other"}
    unsettled = version(cache_store)

    listed = user_api.get("/api/jobs").json()["items"]  # a list reports it done too

    assert [item["status"] for item in listed] == ["succeeded"]
    assert version(cache_store) > unsettled
    assert {b["title"] for b in api.get(PAGE).json()["items"]} == {"Imported", "Unseen"}
    assert cache_store.exists(mark)


def test_an_import_has_the_worker_drop_the_dead_entries(
    user_api: Api, api: Api, cache_store: redis.Redis, worker: CeleryProcess
) -> None:
    book, _ = add_books(user_api, "Dune", "Emma")
    for path in (PAGE, "/api/books?page=2&per_page=1", "/api/books", f"/api/books/{book['id']}"):
        assert api.get(path).status_code == 200
    old = version(cache_store)
    assert entry_versions(cache_store) == {old}

    job = run(user_api, "books.import", {"books": [{"title": "Imported", "author": "A"}]})

    assert job["result"]["created"] == 1
    assert version(cache_store) > old
    deadline = time.monotonic() + DEADLINE
    while entries(cache_store) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert entries(cache_store) == set()
    assert api.get(PAGE).json()["pagination"]["total_items"] == 3


# -- reports are cached per catalog version -------------------------------------------------


def test_a_report_is_computed_once_per_catalog_version(
    app: Flask, user_api: Api, worker: CeleryProcess
) -> None:
    (book, _) = add_books(user_api, "Dune", "Emma")
    params = {"group_by": ["genre", "author"]}
    first = run(user_api, "books.report", params)["result"]
    assert first["totals"]["count"] == 2
    with app.app_context():  # behind the app's back: no new catalog version
        db.session.execute(text("UPDATE books SET author = 'Zed', author_key = 'zed' "
                                "WHERE id = :i"), {"i": book["id"]})  # fmt: skip
        db.session.commit()
    assert run(user_api, "books.report", params)["result"] == first  # from the cache
    other = run(user_api, "books.report", {})["result"]  # other params: computed
    assert other["top_authors"] == [{"author": "Some Author", "count": 1},
                                    {"author": "Zed", "count": 1}]  # fmt: skip

    add_books(user_api, "Persuasion")  # a write through the API: a new version

    fresh = run(user_api, "books.report", params)["result"]
    assert fresh["totals"]["count"] == 3
    assert fresh["top_authors"] == [{"author": "Some Author", "count": 2},
                                    {"author": "Zed", "count": 1}]  # fmt: skip


# -- the stampede lock, against a real Redis ------------------------------------------------


def stampede_read() -> CatalogRead:
    """A read of its own (nothing else computes or stores it)."""
    return CatalogRead(BOOKS_LIST, "/api/books", (("stampede", uuid.uuid4().hex),))


def catalog_cache(url: str, *, lock_wait: float) -> CatalogCache:
    client = cache_client(url)
    backend = JsonRedisCache(host=client, key_prefix=CACHE_PREFIX)
    return CatalogCache(backend, client, ttl=60, lock_wait=lock_wait)


def test_concurrent_first_reads_compute_once(app: Flask) -> None:
    """Many first reads at once, for a few reads in a row: one computation each."""
    cache = catalog_cache(app.extensions["folio"].settings.cache_redis_url, lock_wait=10)
    readers = 64  # enough waiters that one polling just as the entry lands is likely

    def first_reads(read: CatalogRead) -> tuple[int, list[dict[str, Any]]]:
        calls, lock, start = [], threading.Lock(), threading.Barrier(readers)

        def compute() -> dict[str, Any]:
            with lock:
                calls.append(1)
            time.sleep(0.2)
            return {"computed": len(calls)}

        def first_read() -> dict[str, Any]:
            start.wait()
            return cache.read(read, compute)

        with ThreadPoolExecutor(readers) as pool:
            futures = [pool.submit(first_read) for _ in range(readers)]
            payloads = [future.result(timeout=10) for future in futures]
        return len(calls), payloads

    try:
        for _ in range(5):
            calls, payloads = first_reads(stampede_read())
            assert calls == 1
            assert payloads == [{"computed": 1}] * readers
        assert cache.failures == 0
    finally:
        cache.client.close()


def test_a_failed_lock_holder_lets_the_others_compute_at_once(app: Flask) -> None:
    # A wait of a minute: anyone who waited it out would miss the 10 s deadline below.
    cache = catalog_cache(app.extensions["folio"].settings.cache_redis_url, lock_wait=60)
    read, calls, lock = stampede_read(), [], threading.Lock()
    start = threading.Barrier(8)

    def compute() -> str:
        with lock:
            calls.append(1)
            first = len(calls) == 1
        time.sleep(0.3)
        if first:
            raise RuntimeError("the lock holder failed")
        return "payload"

    def first_read() -> str:
        start.wait()
        return cache.read(read, compute)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(first_read) for _ in range(8)]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=10))
            except RuntimeError as exc:
                outcomes.append(str(exc))
    assert sorted(outcomes) == ["payload"] * 7 + ["the lock holder failed"]
    assert len(calls) >= 2  # the others computed themselves once the lock was gone
    assert cache.read(read, compute) == "payload"  # and one of them stored it
    cache.client.close()


def test_reads_compute_while_the_cache_redis_is_down() -> None:
    server = RedisServer()
    server.start()
    cache = catalog_cache(server.url, lock_wait=1)
    read = stampede_read()
    try:
        assert cache.read(read, lambda: "first") == "first"
        assert cache.read(read, lambda: "second") == "first"  # cached
        server.stop()
        assert cache.read(read, lambda: "from the database") == "from the database"
        assert cache.failures == 1
        assert cache.remember("report:x", lambda: 42) == 42
        assert cache.failures == 2
    finally:
        cache.client.close()
        server.remove()
