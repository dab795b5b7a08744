"""Functional tests: every test talks HTTP to the live app, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from shared.db import db
from shared.services import users
from tests.conftest import truncate_all
from tests.support.live import Api, LiveServer

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _clean(app: Flask) -> Iterator[None]:
    truncate_all(app)
    yield


@pytest.fixture
def api(live_server: LiveServer) -> Api:
    """An anonymous client."""
    return Api(live_server.url)


@pytest.fixture
def make_user(app: Flask, api: Api) -> Callable[..., tuple[dict[str, Any], Api]]:
    """Create a user (optionally admin or another tier) and return it with a logged-in client."""

    def make(*, role: str = "user", tier: str = "free") -> tuple[dict[str, Any], Api]:
        n = next(_counter)
        email = f"user{n}@example.com"
        with app.app_context():
            user = users.register_user(
                db.session, app.extensions["folio"].passwords,
                email=email, username=f"user{n}", password=PASSWORD, role=role, tier=tier,
            )  # fmt: skip
            db.session.commit()
            record = {"id": user.id, "email": email, "username": user.username}
        response = api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        record["tokens"] = response.json()
        return record, api.as_user(response.json()["access_token"])

    return make


@pytest.fixture
def user_api(make_user: Callable[..., tuple[dict[str, Any], Api]]) -> Api:
    return make_user()[1]


@pytest.fixture
def admin_api(make_user: Callable[..., tuple[dict[str, Any], Api]]) -> Api:
    return make_user(role="admin")[1]


def book_payload(**overrides: Any) -> dict[str, Any]:
    payload = {"title": "1984", "author": "George Orwell", "isbn": "9780451524935",
               "published_year": 1949, "genre": "Fiction", "price": 9.99}  # fmt: skip
    return payload | overrides


def rename_behind_the_apps_back(app: Flask, book_id: int, title: str) -> None:
    """A change the app does not know about: only a cached read can still show the old."""
    with app.app_context():
        db.session.execute(text("UPDATE books SET title = :t WHERE id = :i"),
                           {"t": title, "i": book_id})  # fmt: skip
        db.session.commit()


def add_books(client: Any, *titles: str) -> list[dict[str, Any]]:
    """Create books without ISBNs (so any number of them fit) and return them."""
    created = []
    for title in titles:
        response = client.post("/api/books", json={"title": title, "author": "Some Author"})
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


def assert_problem(response: Any, status: int, *, kind: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem of ``status`` (and ``kind``)."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    assert body["title"]
    assert body["instance"] == response.request.path_url.split("?")[0]
    assert body["request_id"] == response.headers["X-Request-ID"]
    if kind is not None:
        assert body["type"] == f"/problems/{kind}"
    return body
