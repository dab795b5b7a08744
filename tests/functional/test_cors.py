"""Headers for browsers and caches: CORS (API.md section 6) and HTTP caching (6b)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from api import create_app
from shared.db import db
from tests.conftest import test_settings
from tests.functional.conftest import book_payload
from tests.support.live import Api, LiveServer

ALLOWED_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
ALLOWED_HEADERS = [
    "Content-Type",
    "Authorization",
    "Idempotency-Key",
    "X-Request-ID",
    "If-None-Match",
]
EXPOSED = {
    "location", "retry-after", "x-request-id", "link", "etag", "ratelimit", "ratelimit-policy",
    "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
}  # fmt: skip
APP_ORIGIN = "https://app.example"


def _set(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


def _preflight(client: Api, path: str, origin: str, **headers: str) -> requests.Response:
    return client.request(
        "OPTIONS",
        path,
        headers={"Origin": origin, "Access-Control-Request-Method": "POST", **headers},
    )


@pytest.fixture
def restricted_api(app: Flask) -> Iterator[Api]:
    """The app built with ``CORS_ORIGINS=https://app.example``, over HTTP."""
    settings = test_settings(
        database_url=app.config["SQLALCHEMY_DATABASE_URI"],
        redis_url=app.extensions["folio"].settings.redis_url,
        cors_origins=(APP_ORIGIN,),
    )
    restricted = create_app(settings)
    server = LiveServer(restricted)
    server.start()
    yield Api(server.url)
    server.stop()
    with restricted.app_context():
        db.engine.dispose()
    restricted.extensions["folio"].redis.close()


# -- CORS ---------------------------------------------------------------------------------


def test_preflight_from_an_allowed_origin_lists_methods_and_headers(api: Api) -> None:
    requested = ", ".join([*ALLOWED_HEADERS, "X-Not-Allowed"])
    response = _preflight(
        api, "/api/books", APP_ORIGIN, **{"Access-Control-Request-Headers": requested}
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert _set(response.headers["Access-Control-Allow-Methods"]) == {
        m.lower() for m in ALLOWED_METHODS
    }
    assert _set(response.headers["Access-Control-Allow-Headers"]) == {
        h.lower() for h in ALLOWED_HEADERS
    }
    assert int(response.headers["Access-Control-Max-Age"]) > 0


def test_preflight_needs_no_token_on_a_protected_route(api: Api) -> None:
    response = _preflight(api, "/api/users/me", APP_ORIGIN)
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


def test_actual_responses_expose_the_headers_clients_read(api: Api) -> None:
    for response in (
        api.get("/api/books", headers={"Origin": APP_ORIGIN}),
        api.get("/api/books/999999", headers={"Origin": APP_ORIGIN}),  # a problem, too
    ):
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert _set(response.headers["Access-Control-Expose-Headers"]) >= EXPOSED


def test_a_wildcard_is_sent_as_is_never_reflected_or_with_credentials(api: Api) -> None:
    for origin in ("https://evil.example", "null"):
        response = api.get("/api/books", headers={"Origin": origin})
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_configured_origin_is_allowed_and_others_are_not(restricted_api: Api) -> None:
    allowed = restricted_api.get("/api/books", headers={"Origin": APP_ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    preflight = _preflight(restricted_api, "/api/books", APP_ORIGIN)
    assert preflight.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    for origin in (
        "https://evil.example",
        "https://app.example.evil.example",
        "http://app.example",
    ):
        for response in (
            restricted_api.get("/api/books", headers={"Origin": origin}),
            _preflight(restricted_api, "/api/books", origin),
        ):
            assert response.headers.get("Access-Control-Allow-Origin") in (None, APP_ORIGIN)
            assert "Access-Control-Allow-Methods" not in response.headers
    # The answer depends on Origin, so shared caches must key on it.
    for origin in (APP_ORIGIN, "https://evil.example"):
        response = restricted_api.get("/api/books", headers={"Origin": origin})
        assert "origin" in _set(response.headers.get("Vary"))


def test_health_is_not_a_cors_resource(api: Api) -> None:
    for path in ("/health", "/health/ready"):
        response = api.get(path, headers={"Origin": APP_ORIGIN})
        assert response.status_code == 200
        assert "Access-Control-Allow-Origin" not in response.headers
        preflight = _preflight(api, path, APP_ORIGIN)
        assert "Access-Control-Allow-Origin" not in preflight.headers


# -- HTTP caching -------------------------------------------------------------------------


def test_authenticated_responses_are_private_no_cache(
    make_user: Callable[..., tuple[dict[str, Any], Api]],
) -> None:
    user, client = make_user()
    created = client.post("/api/books", json=book_payload())
    assert created.status_code == 201, created.text
    book = created.json()
    other = make_user()[1]
    for response in (
        client.get("/api/users/me"),
        created,
        client.patch(f"/api/books/{book['id']}", json={"price": 5}),
        other.delete(f"/api/books/{book['id']}"),  # a 403 for an authenticated caller
        client.get(f"/api/users/{user['id']}"),
    ):
        assert response.status_code < 500, response.text
        assert _set(response.headers["Cache-Control"]) == {"private", "no-cache"}


def test_public_catalog_reads_carry_an_etag_and_no_cache(api: Api, user_api: Api) -> None:
    book = user_api.post("/api/books", json=book_payload()).json()
    for path in ("/api/books", f"/api/books/{book['id']}", "/api/books?limit=5"):
        response = api.get(path)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-cache"
        etag = response.headers["ETag"]
        assert etag.startswith('"')  # strong
        again = api.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.headers["ETag"] == etag


def test_token_responses_are_no_store(
    api: Api, make_user: Callable[..., tuple[dict[str, Any], Api]]
) -> None:
    user, _ = make_user()
    login = api.post(
        "/api/auth/login", json={"email": user["email"], "password": "correct-horse-battery"}
    )
    refresh = api.post("/api/auth/refresh", json={"refresh_token": login.json()["refresh_token"]})
    for response in (login, refresh):
        assert response.status_code == 200, response.text
        assert "no-store" in _set(response.headers["Cache-Control"])
        assert "public" not in _set(response.headers["Cache-Control"])
