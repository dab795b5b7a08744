"""Liveness and readiness over HTTP."""

from __future__ import annotations

from tests.support.live import Api


def test_health_is_ok_without_touching_dependencies(api: Api) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}
    assert response.headers["X-Request-ID"]


def test_ready_reports_database_redis_and_no_worker_as_degraded(api: Api) -> None:
    response = api.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "redis": "ok", "workers": 0},
    }
