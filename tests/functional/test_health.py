"""Liveness and readiness over HTTP."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask

from shared.services.workers import HEARTBEAT_TTL, HEARTBEATS_KEY, record_heartbeat
from tests.conftest import test_settings
from tests.functional.conftest import assert_problem
from tests.support.live import Api, serve
from tests.support.servers import RedisServer, free_port
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
