"""The problem builder, request ids and the JSON parser, without a server."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from typing import Any

import pytest
import redis
from flask import Flask, abort
from sqlalchemy import exc as sa_exc

from api.errors import (
    flatten_errors,
    is_database_outage,
    problem,
    register_error_handlers,
    request_id,
    validation_problem,
)
from api.json import MAX_DEPTH, FolioJSONProvider


@pytest.fixture
def flask_app() -> Flask:
    return Flask(__name__)


@pytest.fixture
def provider(flask_app: Flask) -> FolioJSONProvider:
    return FolioJSONProvider(flask_app)


# -- problems -----------------------------------------------------------------------------


def test_problem_has_every_member_and_problem_json(flask_app: Flask) -> None:
    with flask_app.test_request_context("/api/books/7", headers={"X-Request-ID": "req-1"}):
        response = problem(409, "Already there.", kind="conflict", field="isbn")
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert json.loads(response.get_data()) == {
        "type": "/problems/conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "Already there.",
        "instance": "/api/books/7",
        "request_id": "req-1",
        "field": "isbn",
    }


def test_problem_keeps_an_absolute_type_and_sets_headers(flask_app: Flask) -> None:
    quota = "https://iana.org/assignments/http-problem-types#quota-exceeded"
    with flask_app.test_request_context("/api/search"):
        response = problem(429, "Slow down.", kind=quota, headers={"Retry-After": "7"})
    body = json.loads(response.get_data())
    assert body["type"] == quota
    assert response.headers["Retry-After"] == "7"


def test_flatten_errors_uses_dotted_paths() -> None:
    messages = {"params": {"on_conflict": ["Bad."], "books": {0: {"isbn": ["Bad ISBN."]}}}}
    assert flatten_errors(messages) == {
        "params.on_conflict": ["Bad."],
        "params.books.0.isbn": ["Bad ISBN."],
    }
    assert flatten_errors(["Invalid input type."]) == {"_schema": ["Invalid input type."]}


@pytest.mark.parametrize(("count", "noun"), [(1, "field"), (2, "fields")])
def test_validation_problem_counts_fields(flask_app: Flask, count: int, noun: str) -> None:
    errors = {f"f{i}": ["Bad."] for i in range(count)}
    with flask_app.test_request_context("/"):
        body = json.loads(validation_problem(errors).get_data())
    assert f"{count} invalid {noun}" in body["detail"]
    assert body["errors"] == errors


@pytest.fixture
def failing_app() -> Flask:
    """A bare app with Folio's handlers and routes that fail in chosen ways."""
    app = Flask(__name__)
    register_error_handlers(app)
    failures: dict[str, Exception] = {
        "redis": redis.ConnectionError("Error 111 connecting to 10.0.0.7:6379."),
        "redis-timeout": redis.TimeoutError("Timeout reading from 10.0.0.7:6379"),
        "pool": sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
        "bug": KeyError("secret_column"),
    }

    @app.get("/fail/<name>")
    def fail(name: str) -> str:
        raise failures[name]

    @app.get("/gone")
    def gone() -> str:
        abort(404, "Job 42 does not exist.")

    return app


@pytest.mark.parametrize("name", ["redis", "redis-timeout", "pool"])
def test_outages_not_wrapped_by_a_service_are_503(failing_app: Flask, name: str) -> None:
    response = failing_app.test_client().get(f"/fail/{name}")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    assert "10.0.0.7" not in response.get_data(as_text=True)
    assert "QueuePool" not in response.get_data(as_text=True)


def test_a_bug_is_a_500_without_its_message(failing_app: Flask) -> None:
    response = failing_app.test_client().get("/fail/bug")
    assert response.status_code == 500
    assert "secret_column" not in response.get_data(as_text=True)


def test_an_http_error_raised_with_a_message_keeps_it(failing_app: Flask) -> None:
    body = failing_app.test_client().get("/gone").get_json(force=True)
    assert body["detail"] == "Job 42 does not exist."
    routing = failing_app.test_client().get("/nowhere").get_json(force=True)
    assert routing["detail"] == "There is no resource at /nowhere."


# -- request ids --------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["a", "A.b_c-9", "z" * 64])
def test_request_id_echoes_a_sane_client_value(flask_app: Flask, sent: str) -> None:
    with flask_app.test_request_context("/", headers={"X-Request-ID": sent}):
        assert request_id() == sent


@pytest.mark.parametrize("sent", ["", "z" * 65, "a b", "a\tb", "é", "a/b", "a:b"])
def test_request_id_replaces_anything_else_once(flask_app: Flask, sent: str) -> None:
    with flask_app.test_request_context("/", headers={"X-Request-ID": sent}):
        fresh = request_id()
        assert fresh != sent
        assert len(fresh) == 16
        assert request_id() == fresh  # stable for the whole request


# -- JSON in ------------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_numbers_stay_exact(provider: FolioJSONProvider) -> None:
    value = provider.loads(b'{"price": 9.99, "year": 1949, "tiny": 1e-400}')
    assert value == {"price": Decimal("9.99"), "year": 1949, "tiny": Decimal("1e-400")}


def test_moderate_nesting_and_surrogate_pairs_parse(provider: FolioJSONProvider) -> None:
    assert provider.loads(_nested(MAX_DEPTH)) is not None
    assert provider.loads('"\\ud83d\\ude00"') == "\U0001f600"
    assert provider.loads('"\\\\ud800"') == "\\ud800"  # an escaped backslash, not an escape
    assert provider.loads('{"k": "caf\\u00e9"}') == {"k": "café"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(_nested(MAX_DEPTH + 1), "nested deeper", id="depth-33"),
        pytest.param("[" * 100_000, "nested deeper", id="recursion"),
        pytest.param('{"a": ' * 40 + "1" + "}" * 40, "nested deeper", id="objects"),
        pytest.param("NaN", "NaN", id="nan"),
        pytest.param("[-Infinity]", "Infinity", id="infinity"),
        pytest.param("1e309", "larger than", id="huge-exponent"),
        pytest.param("1" * 101, "more than 100", id="long-integer"),
        pytest.param("0." + "1" * 100, "more than 100", id="long-decimal"),
        pytest.param('["\\ud800"]', "surrogate", id="lone-high-surrogate"),
        pytest.param('{"\\udc00": 1}', "surrogate", id="lone-low-surrogate-in-key"),
        pytest.param(b'"\xff"', "can't decode", id="invalid-utf8"),
    ],
)
def test_hostile_json_is_a_value_error(
    provider: FolioJSONProvider, text: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        provider.loads(text)


class _DriverError(Exception):
    """Stands in for a DB-API error: what matters is its message, module and SQLSTATE."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _operational(message: str, sqlstate: str | None = None) -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, _DriverError(message, sqlstate))


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (_operational("connection failed: Connection refused"), True),
        (_operational("terminating connection due to administrator command", "57P01"), True),
        (_operational("the database system is starting up", "57P03"), True),
        (_operational("could not receive data from server", "08006"), True),
        (_operational("canceling statement due to statement timeout", "57014"), False),
        (_operational('relation "books" does not exist', "42P01"), False),
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
    ],
)
def test_only_real_outages_count_as_the_database_being_down(
    error: sa_exc.SQLAlchemyError, outage: bool
) -> None:
    assert is_database_outage(error) is outage


def test_sqlite_outages_are_told_apart_from_bugs() -> None:
    locked = sa_exc.OperationalError("x", {}, sqlite3.OperationalError("database is locked"))
    missing = sa_exc.OperationalError("x", {}, sqlite3.OperationalError("no such table: books"))
    assert is_database_outage(locked) is True
    assert is_database_outage(missing) is False
