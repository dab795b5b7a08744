"""Liveness and readiness over HTTP."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask

from shared.services.workers import HEARTBEAT_TTL, HEARTBEATS_KEY, record_heartbeat
from tests.conftest import test_settings, worker_env
from tests.functional.conftest import assert_problem
from tests.support.live import Api, serve
from tests.support.servers import PostgresServer, RedisServer, free_port
from tests.support.workers import CeleryProcess


def test_health_is_ok_without_touching_dependencies(api: Api) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}
    assert response.headers["X-Request-ID"]


def test_ready_reports_database_redis_and_no_worker_as_degraded(app: Flask, api: Api) -> None:
    app.extensions["folio"].redis.delete(HEARTBEATS_KEY)  # no worker seen
    response = api.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "redis": "ok", "workers": 0},
    }


def _served(settings_overrides: dict[str, Any]) -> Any:
    return serve(test_settings(**settings_overrides))


def test_ready_is_503_naming_redis_when_redis_is_unreachable(app: Flask) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with _served(
        {"database_url": app.config["SQLALCHEMY_DATABASE_URI"], "redis_url": closed}
    ) as client:
        response = client.get("/health/ready")
        liveness = client.get("/health")
    body = assert_problem(response, 503)
    assert "redis" in body["detail"].lower()
    assert body["checks"] == {"database": "ok", "redis": "unavailable", "workers": 0}
    assert response.headers["Retry-After"].isdigit()
    assert liveness.status_code == 200


def test_ready_is_503_naming_the_database_when_it_is_unreachable(
    redis_server: RedisServer,
) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with _served({"database_url": closed, "redis_url": redis_server.url}) as client:
        response = client.get("/health/ready")
    body = assert_problem(response, 503)
    assert "database" in body["detail"].lower()
    assert body["checks"]["database"] == "unavailable"
    assert body["checks"]["redis"] == "ok"


def test_ready_counts_workers_with_a_live_heartbeat(app: Flask, api: Api) -> None:
    store = app.extensions["folio"].redis
    store.delete(HEARTBEATS_KEY)  # only the workers below
    record_heartbeat(store, "worker-a@host1")
    record_heartbeat(store, "worker-b@host2")
    record_heartbeat(store, "worker-c@host3", now=time.time() - HEARTBEAT_TTL - 1)  # silent
    response = api.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "workers": 2},
    }


def test_ready_counts_a_real_worker_and_forgets_it_after_a_clean_shutdown(
    app: Flask, api: Api, worker: CeleryProcess
) -> None:
    app.extensions["folio"].redis.delete(HEARTBEATS_KEY)
    worker.stop()
    try:
        assert api.get("/health/ready").json()["status"] == "degraded"
        worker.start()  # its first heartbeat is recorded as it starts
        body = api.get("/health/ready").json()
        assert body == {
            "status": "ready",
            "checks": {"database": "ok", "redis": "ok", "workers": 1},
        }
    finally:
        if not worker.running:
            worker.start()


def _ready_when(client: Api, expected: dict[str, Any], *, timeout: float = 30) -> None:
    """Poll readiness until it answers ``expected`` (a dependency may take a moment)."""
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        response = client.get("/health/ready")
        body = response.json()
        if response.status_code == 200 and body == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"readiness never became {expected}; last: {body}")


def test_ready_follows_redis_and_the_worker_going_and_coming_back(database_url: str) -> None:
    redis = RedisServer(persist=True)  # like production's: heartbeats survive a restart
    worker = CeleryProcess("worker", worker_env(database_url, redis.url))
    settings = {"database_url": database_url, "redis_url": redis.url}
    ok = {"database": "ok", "redis": "ok"}
    try:
        redis.start()
        with _served(settings) as client:
            _ready_when(client, {"status": "degraded", "checks": ok | {"workers": 0}})
            worker.start()
            _ready_when(client, {"status": "ready", "checks": ok | {"workers": 1}})

            redis.stop()
            down = client.get("/health/ready")
            body = assert_problem(down, 503)
            assert body["detail"] == "Not ready: redis unavailable."
            assert body["checks"] == {"database": "ok", "redis": "unavailable", "workers": 0}
            assert client.get("/health").status_code == 200  # alive all along

            redis.start()
            _ready_when(client, {"status": "ready", "checks": ok | {"workers": 1}})
    finally:
        worker.stop()
        redis.remove()


def test_ready_follows_postgresql_going_and_coming_back(redis_server: RedisServer) -> None:
    postgres = PostgresServer()
    settings = {"database_url": postgres.url, "redis_url": redis_server.url}
    try:
        postgres.start()
        with _served(settings) as client:
            assert client.get("/health/ready").json()["checks"]["database"] == "ok"

            postgres.stop()
            body = assert_problem(client.get("/health/ready"), 503)
            assert body["detail"] == "Not ready: database unavailable."
            assert body["checks"]["database"] == "unavailable"
            assert body["checks"]["redis"] == "ok"

            postgres.start()  # the pool's dead connections are replaced, no restart
            ready = client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["database"] == "ok"
            assert ready.json()["status"] in {"ready", "degraded"}  # the suite's worker
    finally:
        postgres.remove()
