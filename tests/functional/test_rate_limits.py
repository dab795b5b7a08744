"""Rate limits over HTTP (API.md section 5), against a real Redis, in one and many processes."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from tests.conftest import TEST_SECRET, test_settings
from tests.functional.conftest import (
    PASSWORD,
    assert_problem,
    book_payload,
    rename_behind_the_apps_back,
)
from tests.support.live import Api, serve
from tests.support.servers import RedisServer
from tests.support.web import procfile_web

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                 "RateLimit-Policy", "RateLimit")  # fmt: skip
MakeUser = Callable[..., tuple[dict[str, Any], Api]]


def limited(app: Flask, redis_url: str, **overrides: Any) -> Any:
    """Another app on the same database with rate limiting on, served over HTTP."""
    overrides = {"ratelimit_enabled": True} | overrides
    return serve(test_settings(database_url=app.config["SQLALCHEMY_DATABASE_URI"],
                               redis_url=redis_url, **overrides))  # fmt: skip


def login(client: Api, email: str) -> Api:
    response = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client.as_user(response.json()["access_token"])


def test_every_limited_response_carries_both_header_sets(
    app: Flask, redis_server: RedisServer
) -> None:
    with limited(app, redis_server.url, ratelimit_default="5 per minute;100 per hour") as api:
        before = time.time()
        response = api.get("/api/books")
        after = time.time()
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "4"
    assert before + 60 <= int(response.headers["X-RateLimit-Reset"]) <= after + 61
    policy = response.headers["RateLimit-Policy"]
    assert '"minute";q=5;w=60' in policy
    assert '"hour";q=100;w=3600' in policy
    match = re.fullmatch(r'"minute";r=4;t=(\d+)', response.headers["RateLimit"])
    assert match
    assert 0 < int(match.group(1)) <= 60
    assert "Retry-After" not in response.headers


def test_over_the_limit_is_a_429_problem_with_retry_after(
    app: Flask, redis_server: RedisServer
) -> None:
    with limited(app, redis_server.url, ratelimit_default="3 per minute") as api:
        answers = [api.get("/api/books") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    body = assert_problem(answers[-1], 429)
    assert body["type"] == QUOTA_EXCEEDED
    assert body["limit"] == "3 per 1 minute"
    assert 1 <= body["retry_after"] <= 60
    assert answers[-1].headers["Retry-After"] == str(body["retry_after"])
    assert answers[-1].headers["X-RateLimit-Remaining"] == "0"
    assert all(name in answers[-1].headers for name in LIMIT_HEADERS)


def test_each_tier_gets_its_own_limit_on_the_same_route(
    app: Flask, redis_server: RedisServer, make_user: MakeUser
) -> None:
    overrides = {"ratelimit_free": "2 per minute", "ratelimit_standard": "3 per minute",
                 "ratelimit_premium": "4 per minute"}  # fmt: skip
    users = {tier: make_user(tier=tier)[0] for tier in ("free", "standard", "premium")}
    with limited(app, redis_server.url, **overrides) as api:
        for tier, allowed in (("free", 2), ("standard", 3), ("premium", 4)):
            client = login(api, users[tier]["email"])
            codes = [client.get("/api/users/me").status_code for _ in range(allowed + 1)]
            assert codes == [200] * allowed + [429], tier


def test_a_tier_change_applies_on_the_next_request(
    app: Flask, redis_server: RedisServer, make_user: MakeUser, admin_api: Api
) -> None:
    user, _ = make_user(tier="free")
    overrides = {"ratelimit_free": "1 per minute", "ratelimit_premium": "5 per minute"}
    with limited(app, redis_server.url, **overrides) as api:
        client = login(api, user["email"])
        assert client.get("/api/users/me").status_code == 200
        assert client.get("/api/users/me").status_code == 429
        changed = admin_api.patch(f"/api/users/{user['id']}", json={"tier": "premium"})
        assert changed.status_code == 200, changed.text
        response = client.get("/api/users/me")
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "5"


def test_authenticated_callers_are_counted_by_user_not_by_address(
    app: Flask, redis_server: RedisServer, make_user: MakeUser
) -> None:
    first, second = make_user()[0], make_user()[0]
    with limited(app, redis_server.url, ratelimit_free="1 per minute",
                 ratelimit_default="3 per minute") as api:  # fmt: skip
        clients = [login(api, user["email"]) for user in (first, second)]  # 2 anonymous
        codes = [client.get("/api/users/me").status_code for client in clients]
        again = clients[0].get("/api/users/me").status_code
        anonymous = [api.get("/api/books").status_code for _ in range(2)]
    assert codes == [200, 200]  # one bucket per user, though both come from one address
    assert again == 429
    assert anonymous == [200, 429]  # the address's own bucket: two logins and one read


def test_login_is_limited_per_address_whatever_the_account(
    app: Flask, redis_server: RedisServer, make_user: MakeUser
) -> None:
    user = make_user()[0]
    with limited(app, redis_server.url, ratelimit_login="3 per minute") as api:
        codes = [api.post("/api/auth/login", json={"email": f"x{i}@example.com",
                                                   "password": "wrong-password"}).status_code
                 for i in range(3)]  # fmt: skip
        blocked = api.post("/api/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert codes == [401, 401, 401]
    assert_problem(blocked, 429)
    policy = blocked.headers["RateLimit-Policy"]
    assert '"auth.login-minute";q=3;w=60' in policy  # the route's own limit
    assert '"hour";q=50;w=3600' in policy  # and the API-wide budget it also counts against


def test_search_and_job_submission_have_their_own_limits(
    app: Flask, redis_server: RedisServer, make_user: MakeUser
) -> None:
    user = make_user(tier="premium")[0]
    overrides = {"ratelimit_search": "2 per minute", "ratelimit_jobs_premium": "1 per minute"}
    with limited(app, redis_server.url, **overrides) as api:
        searches = [api.get("/api/search?q=dune").status_code for _ in range(3)]
        client = login(api, user["email"])
        job = {"type": "books.report", "params": {}}
        submits = [client.post("/api/jobs", json=job).status_code for _ in range(2)]
        csv = client.post("/api/books/imports", data="title,author\nA,B\n",
                          headers={"Content-Type": "text/csv"})  # fmt: skip
        other_routes = client.get("/api/jobs").status_code
    assert searches == [200, 200, 429]
    assert submits == [202, 429]
    assert csv.status_code == 429  # one limit for every way of submitting a job
    assert other_routes == 200


def test_health_and_preflight_are_exempt(app: Flask, redis_server: RedisServer) -> None:
    with limited(app, redis_server.url, ratelimit_default="1 per minute") as api:
        health = [api.get(path) for path in ("/health", "/health/ready") for _ in range(3)]
        preflight = [api.request("OPTIONS", "/api/books", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
            for _ in range(3)]  # fmt: skip
        first_read = api.get("/api/books")
    assert all(r.status_code == 200 for r in health + preflight)
    assert not any("X-RateLimit-Limit" in r.headers for r in health + preflight)
    assert first_read.status_code == 200  # the preflights were not counted


@pytest.mark.parametrize(("hops", "separate"), [(1, True), (0, False)])
def test_the_client_address_is_read_through_trusted_proxies_only(
    app: Flask, redis_server: RedisServer, hops: int, separate: bool
) -> None:
    with limited(app, redis_server.url, ratelimit_default="1 per minute",
                 trusted_proxies=hops) as api:  # fmt: skip
        codes = [api.get("/api/books", headers={"X-Forwarded-For": address}).status_code
                 for address in ("203.0.113.1", "203.0.113.2")]  # fmt: skip
    assert codes == ([200, 200] if separate else [200, 429])


def test_limits_can_be_switched_off(app: Flask, redis_server: RedisServer) -> None:
    with limited(app, redis_server.url, ratelimit_default="1 per minute",
                 ratelimit_enabled=False) as api:  # fmt: skip
        answers = [api.get("/api/books") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "X-RateLimit-Limit" not in answers[-1].headers


def test_limits_fail_open_while_redis_is_down_and_resume_when_it_is_back(
    app: Flask, user_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """One Redis for everything (the default): limits, tokens and, in database 1, the cache."""
    book = user_api.post("/api/books", json=book_payload(title="Dune")).json()
    path = f"/api/books/{book['id']}"
    redis = RedisServer()
    redis.start()
    try:
        with limited(app, redis.url, ratelimit_default="4 per minute") as api:
            assert api.get(path).json()["title"] == "Dune"  # cached now
            redis.stop()
            rename_behind_the_apps_back(app, book["id"], "Dune Messiah")
            with caplog.at_level(logging.WARNING):
                down = [api.get(path) for _ in range(4)]
                ready = api.get("/health/ready")
            redis.start()  # back, empty
            back = [api.get(path) for _ in range(3)]
            rename_behind_the_apps_back(app, book["id"], "Children of Dune")
            cached_again = api.get(path)
            over = api.get(path)
    finally:
        redis.remove()
    assert [r.status_code for r in down] == [200] * 4
    assert {r.json()["title"] for r in down} == {"Dune Messiah"}  # from the database
    assert not any("X-RateLimit-Limit" in r.headers for r in down)
    body = assert_problem(ready, 503)
    assert "redis" in body["detail"].lower()
    failures = [r for r in caplog.records if r.name == "flask-limiter"]
    assert len(failures) == 1, [r.getMessage() for r in failures]  # once per incident
    assert any("works again" in r.getMessage() for r in caplog.records)
    assert [r.status_code for r in back] == [200, 200, 200]  # a fresh window, counted
    assert back[0].headers["X-RateLimit-Remaining"] == "3"
    assert cached_again.json()["title"] == "Dune Messiah"  # caching resumed, no restart
    assert over.status_code == 429  # limiting resumed


# -- many processes ------------------------------------------------------------------------


@pytest.fixture
def gunicorn_4(database_url: str, redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    """The Procfile's web line with 4 gunicorn workers, search limited to 50 per window."""
    settings = {
        "FOLIO_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": redis_server.url,
        "SECRET_KEY": TEST_SECRET, "WEB_CONCURRENCY": "4",
        "RATELIMIT_SEARCH": "50 per minute", "RATELIMIT_DEFAULT": "1000 per minute",
    }  # fmt: skip
    with procfile_web(settings, tmp_path / "web.log") as url:
        yield url


def test_a_limit_holds_across_four_gunicorn_workers(gunicorn_4: str) -> None:
    def search(_: int) -> requests.Response:
        return requests.get(f"{gunicorn_4}/api/search?q=dune", timeout=30)

    with ThreadPoolExecutor(max_workers=60) as pool:
        answers = list(pool.map(search, range(60)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 50 + [429] * 10
    for refused in (a for a in answers if a.status_code == 429):
        assert all(name in refused.headers for name in (*LIMIT_HEADERS, "Retry-After"))
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["retry_after"] == int(refused.headers["Retry-After"])
