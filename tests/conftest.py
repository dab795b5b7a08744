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
from shared.job_types import QUEUES
from shared.redis_client import make_redis
from shared.services.workers import HEARTBEATS_KEY
from tests.support.live import LiveServer
from tests.support.servers import PostgresServer, RedisServer, postgres_binaries
from tests.support.workers import CeleryProcess

TEST_SECRET = "test-secret-key-0123456789abcdef-0123456789"


def test_settings(**overrides: Any) -> Settings:
    """Settings for tests: fast password hashing, fixed secrets, nothing from os.environ."""
    values: dict[str, Any] = {
        "env": "testing",
        "secret_key": TEST_SECRET,
        "password_time_cost": 1,
        "password_memory_cost": 1024,
        # Limits have their own tests (test_rate_limits.py); elsewhere they would only
        # turn a long test's requests into 429s.
        "ratelimit_enabled": False,
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


def worker_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a test's Celery processes: short sweeps and staleness."""
    return {
        "FOLIO_ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "SECRET_KEY": TEST_SECRET, "JOB_STALE_AFTER": "3", "JOB_SWEEP_INTERVAL": "1",
        "JOB_REQUEUE_AFTER": "3", "POPULAR_FLUSH_INTERVAL": "1", "LOG_LEVEL": "INFO", **extra,
    }  # fmt: skip


@pytest.fixture(scope="session")
def worker(app: Flask, database_url: str, redis_server: RedisServer) -> Iterator[CeleryProcess]:
    """A real Celery worker on every queue, against this session's database and Redis."""
    process = CeleryProcess("worker", worker_env(database_url, redis_server.url))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def beat(database_url: str, redis_server: RedisServer) -> Iterator[CeleryProcess]:
    """``celery beat`` for one test: the sweeper and the views flush run every second."""
    process = CeleryProcess("beat", worker_env(database_url, redis_server.url))
    process.start()
    yield process
    process.stop()


TABLES = ("job_result_chunks", "idempotency_keys", "jobs", "view_flushes", "books", "users")


def truncate_all(app: Flask) -> None:
    """Empty every table and Folio's Redis keys (a live worker keeps its own)."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                db.session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - constants
        db.session.commit()
        services = app.extensions["folio"]
        store = services.redis
        stale = [key for key in store.scan_iter("folio:*") if key != HEARTBEATS_KEY]
        store.delete(*stale, *QUEUES)
        cache = make_redis(services.settings.cache_redis_url)  # its own database
        cache.delete(*cache.scan_iter("folio:*"), "folio:none")
        cache.close()
