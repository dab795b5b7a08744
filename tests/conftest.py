"""Session-wide real services: Redis, PostgreSQL, and the app over real HTTP per backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from api import create_app
from shared.config import Settings
from shared.db import db
from tests.support.live import LiveServer
from tests.support.servers import PostgresServer, RedisServer, postgres_binaries

TEST_SECRET = "test-secret-key-0123456789abcdef-0123456789"


def test_settings(**overrides: Any) -> Settings:
    """Settings for tests: fast password hashing, fixed secrets, nothing from os.environ."""
    values: dict[str, Any] = {
        "env": "testing",
        "secret_key": TEST_SECRET,
        "password_time_cost": 1,
        "password_memory_cost": 1024,
    }
    return Settings(**(values | overrides))


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if not postgres_binaries():
        if os.environ.get("CI"):
            pytest.fail("CI is set but initdb/pg_ctl/postgres are not on PATH")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl, postgres) not found on PATH")
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'folio.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.url


@pytest.fixture(scope="session")
def app(database_url: str, redis_server: RedisServer) -> Iterator[Flask]:
    app = create_app(test_settings(database_url=database_url, redis_url=redis_server.url))
    with app.app_context():
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


def truncate_all(app: Flask) -> None:
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("TRUNCATE books, users RESTART IDENTITY CASCADE"))
        else:
            db.session.execute(text("DELETE FROM books"))
            db.session.execute(text("DELETE FROM users"))
        db.session.commit()
        app.extensions["folio"].redis.flushdb()
