"""The Procfile's own lines, run as an operator would: release, then web under gunicorn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live import Api
from tests.support.servers import RedisServer
from tests.support.web import procfile_web, run_line


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Api]:
    """``release`` then ``web`` from the Procfile in production mode, stopped by PID."""
    redis = RedisServer()
    settings = {
        "FOLIO_ENV": "production", "DATABASE_URL": database_url, "REDIS_URL": redis.url,
        "SECRET_KEY": "stack-test-secret-0123456789abcdef-xyz",
        "CORS_ORIGINS": "https://app.example", "WEB_CONCURRENCY": "2",
    }  # fmt: skip
    try:
        redis.start()
        run_line("release", settings)
        with procfile_web(settings, tmp_path_factory.mktemp("stack") / "web.log") as url:
            yield Api(url)
    finally:
        redis.remove()


def test_register_login_create_list_cursor_and_search_through_gunicorn(stack: Api) -> None:
    assert stack.get("/health").json() == {"status": "healthy"}
    account = {"email": "Reader@Example.com", "username": "reader", "password": "long-password"}
    registered = stack.post("/api/auth/register", json=account)
    assert registered.status_code == 201
    assert registered.headers["Location"] == f"/api/users/{registered.json()['id']}"
    login = stack.post(
        "/api/auth/login", json={"email": "reader@example.com", "password": "long-password"}
    )
    assert login.status_code == 200
    assert login.headers["Cache-Control"] == "no-store"
    client = stack.as_user(login.json()["access_token"])
    titles = ["Dune", "Dune Messiah", "Children of Dune", "Neuromancer", "Foundation"]
    for title in titles:
        created = client.post("/api/books", json={"title": title, "author": "Someone Else"})
        assert created.status_code == 201, created.text
    listing = stack.get("/api/books", params={"per_page": 2})
    assert listing.json()["pagination"]["total_items"] == 5
    assert 'rel="next"' in listing.headers["Link"]
    first = stack.get("/api/books", params={"limit": 3}).json()
    second = stack.get("/api/books", params={"cursor": first["next_cursor"]}).json()
    walked = [b["title"] for b in first["items"] + second["items"]]
    assert walked == titles
    assert second["has_more"] is False
    assert second["next_cursor"] is None
    found = stack.get("/api/search", params={"q": "dun"}).json()
    assert {b["title"] for b in found["items"]} == {"Dune", "Dune Messiah", "Children of Dune"}
    cors = stack.get("/api/books", headers={"Origin": "https://app.example"})
    assert cors.headers["Access-Control-Allow-Origin"] == "https://app.example"


def test_production_errors_are_problems_from_every_gunicorn_worker(stack: Api) -> None:
    for _ in range(6):
        response = stack.get("/api/nowhere")
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "Traceback" not in response.text
