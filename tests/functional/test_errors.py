"""Every error is RFC 9457 problem+json over HTTP: routing, bodies, crashes and outages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from api import create_app
from shared.db import db
from tests.conftest import test_settings
from tests.functional.conftest import assert_problem
from tests.support.live import Api, LiveServer
from tests.support.servers import free_port

SpareApp = Callable[..., Api]


@pytest.fixture
def spare_app(app: Flask) -> Iterator[SpareApp]:
    """Serve another app on the session's database and Redis, with some settings changed.

    ``setup(app)`` may add routes before the first request.
    """
    started: list[tuple[Flask, LiveServer]] = []
    defaults = {
        "database_url": app.config["SQLALCHEMY_DATABASE_URI"],
        "redis_url": app.extensions["folio"].settings.redis_url,
    }

    def serve(*, setup: Callable[[Flask], None] | None = None, **overrides: Any) -> Api:
        extra = create_app(test_settings(**(defaults | overrides)))
        if setup is not None:
            setup(extra)
        server = LiveServer(extra)
        server.start()
        started.append((extra, server))
        return Api(server.url)

    yield serve
    for extra, server in started:
        server.stop()
        with extra.app_context():
            db.engine.dispose()
        extra.extensions["folio"].redis.close()


def assert_no_html(response: requests.Response) -> None:
    assert "html" not in response.headers["Content-Type"]
    assert "<" not in response.text


# -- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/nowhere", "/nowhere", "/api/books/not-a-number", "/api//books",
        "/api/books/01", "/api/books/\uff11", "/api/books/12345678901",
    ],
)  # fmt: skip
def test_unknown_route_is_a_404_problem(api: Api, path: str) -> None:
    response = api.get(path, allow_redirects=False)
    body = assert_problem(response, 404, kind="not-found")
    assert body["instance"] == response.request.path_url
    assert path in body["detail"]
    assert_no_html(response)


def test_wrong_method_is_a_405_problem_with_allow(api: Api) -> None:
    response = api.delete("/api/books")
    body = assert_problem(response, 405, kind="method-not-allowed")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "DELETE" not in allowed
    assert "GET" in body["detail"]
    assert_no_html(response)


# -- request bodies -----------------------------------------------------------------------


def test_body_over_max_content_length_is_a_413_problem(spare_app: SpareApp) -> None:
    small = spare_app(max_content_length=1024)
    headers = {"Content-Type": "application/json"}
    big = '{"email": "' + "x" * 4096 + '"}'
    response = small.post("/api/auth/register", data=big, headers=headers)
    body = assert_problem(response, 413, kind="payload-too-large")
    assert "1024 bytes" in body["detail"]
    assert_no_html(response)
    # Chunked, without a Content-Length: refused as well, not silently truncated.
    response = small.post("/api/auth/register", data=_chunks(big), headers=headers)
    assert_problem(response, 413, kind="payload-too-large")
    # A chunked body under the limit is read whole: valid JSON, rejected by the schema.
    fits = '{"email": "' + "x" * 900 + '"}'
    response = small.post("/api/auth/register", data=_chunks(fits), headers=headers)
    assert_problem(response, 400, kind="validation-error")


def _chunks(text: str, size: int = 500) -> Iterator[bytes]:
    for start in range(0, len(text), size):
        yield text[start : start + size].encode()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_wrong_content_type_on_a_json_route_is_a_415_problem(api: Api, content_type: str) -> None:
    response = api.post(
        "/api/auth/register", data="email=a@b.c", headers={"Content-Type": content_type}
    )
    body = assert_problem(response, 415, kind="unsupported-media-type")
    assert "application/json" in body["detail"]
    assert_no_html(response)


def test_missing_content_type_on_a_json_route_is_a_415_problem(api: Api) -> None:
    response = api.post("/api/auth/register", data=b'{"email": "a@b.c"}')
    assert_problem(response, 415, kind="unsupported-media-type")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("{bad", id="syntax"),
        pytest.param("", id="empty"),
        pytest.param('{"email": "a@b.c",}', id="trailing-comma"),
        pytest.param("[" * 100_000, id="deeply-nested-open"),
        pytest.param("[" * 5000 + "]" * 5000, id="deeply-nested-closed"),
        pytest.param('{"a": ' * 33 + "1" + "}" * 33, id="nested-33-objects"),
        pytest.param('{"price": NaN}', id="nan"),
        pytest.param('{"price": Infinity}', id="infinity"),
        pytest.param('{"price": -Infinity}', id="minus-infinity"),
        pytest.param('{"price": 1e999999999}', id="huge-exponent"),
        pytest.param('{"year": 1' + "0" * 5000 + "}", id="5000-digit-integer"),
        pytest.param('{"username": "bad\\ud800"}', id="lone-surrogate"),
        pytest.param(b'{"email": "\xff\xfe"}', id="invalid-utf8"),
        pytest.param(b'{"password": "pass\xed\xa0\x80word"}', id="raw-surrogate-bytes"),
    ],
)
def test_malformed_json_is_a_400_problem(api: Api, body: str | bytes) -> None:
    response = api.post(
        "/api/auth/register", data=body, headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 400, kind="malformed-json")
    assert problem["title"] == "Malformed JSON"
    assert problem["detail"].startswith("The request body is not valid JSON")
    assert "Traceback" not in response.text
    assert_no_html(response)


def test_json_with_a_surrogate_pair_and_moderate_nesting_is_accepted(api: Api) -> None:
    """The limits refuse hostile input only: an emoji escape and 3 levels parse fine."""
    body = '{"username": "ok\\ud83d\\ude00", "extra": [[{"a": 1.5e2}]]}'
    response = api.post(
        "/api/auth/register", data=body, headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 400, kind="validation-error")
    assert "extra" in problem["errors"]


# -- crashes and outages ------------------------------------------------------------------


def _explode(app: Flask) -> None:
    @app.get("/api/explode")
    def explode() -> str:
        raise RuntimeError("SELECT password_hash FROM users -- secret detail")


def test_unexpected_exception_is_a_500_problem_without_internals(
    spare_app: SpareApp, caplog: pytest.LogCaptureFixture
) -> None:
    crashing = spare_app(setup=_explode)
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = crashing.get("/api/explode")
    body = assert_problem(response, 500, kind="internal-error")
    for leak in ("Traceback", "RuntimeError", "SELECT", "secret", "explode()"):
        assert leak not in response.text
    assert_no_html(response)
    logged = [r for r in caplog.records if r.name == "api.errors" and r.exc_info]
    assert logged, "the 500 handler logs the exception"
    assert body["request_id"] in logged[0].getMessage()


def test_database_down_is_a_503_problem_with_retry_after(spare_app: SpareApp) -> None:
    """PostgreSQL URL on a port where nothing listens: 503 on every route that needs it."""
    database_down = spare_app(database_url=f"postgresql://folio@127.0.0.1:{free_port()}/folio")
    login = {"email": "a@example.com", "password": "long-enough"}
    for response in (
        database_down.get("/api/books"),
        database_down.get("/api/books/1"),
        database_down.get("/api/search?q=river"),
        database_down.post("/api/auth/login", json=login),
    ):
        body = assert_problem(response, 503, kind="service-unavailable")
        assert int(response.headers["Retry-After"]) > 0
        assert "database" in body["detail"].lower()
        for leak in ("psycopg", "connection refused", "127.0.0.1", "traceback"):
            assert leak not in response.text.lower()
        assert_no_html(response)
    # Liveness touches no dependency; readiness reports the outage.
    assert database_down.get("/health").status_code == 200
    assert_problem(database_down.get("/health/ready"), 503)


def test_a_database_without_its_tables_is_a_logged_500_not_an_outage(
    spare_app: SpareApp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ "no such table" is our bug (migrations not applied), not a reason to retry."""
    unmigrated = spare_app(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = unmigrated.get("/api/books")
    assert_problem(response, 500, kind="internal-error")
    assert "Retry-After" not in response.headers
    assert any(r.name == "api.errors" and r.exc_info for r in caplog.records)


def test_redis_down_is_a_503_problem_on_a_route_that_needs_it(
    spare_app: SpareApp, make_user: Callable[..., tuple[dict[str, Any], Api]]
) -> None:
    user, _ = make_user()
    redis_down = spare_app(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = redis_down.as_user(user["tokens"]["access_token"])
    for response in (
        client.get("/api/users/me"),
        client.post("/api/books", json={"title": "Dune", "author": "Frank Herbert"}),
        client.post("/api/auth/logout"),
    ):
        body = assert_problem(response, 503, kind="service-unavailable")
        assert int(response.headers["Retry-After"]) > 0
        assert "redis" in body["detail"].lower()
        assert_no_html(response)
    # Public catalog reads do not need Redis.
    assert redis_down.get("/api/books").status_code == 200
