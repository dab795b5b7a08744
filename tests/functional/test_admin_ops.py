"""Admin operations over HTTP: queue depths, workers and job statistics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from tests.conftest import test_settings, worker_env
from tests.functional.conftest import assert_problem
from tests.support.live import Api, serve
from tests.support.servers import RedisServer, free_port
from tests.support.workers import CeleryProcess

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
ROUTES = ("/api/admin/queues", "/api/admin/workers", "/api/admin/jobs/stats")


@pytest.fixture
def idle_stack(app: Flask, make_user: MakeUser) -> Iterator[tuple[Api, Api]]:
    """The app on a Redis of its own that no worker consumes: (admin, user) clients.

    Jobs submitted here stay queued, so the queues hold exactly what the test sent.
    """
    redis = RedisServer()
    redis.start()
    admin_token = make_user(role="admin")[0]["tokens"]["access_token"]
    user_token = make_user(tier="premium")[0]["tokens"]["access_token"]
    settings = test_settings(
        database_url=app.config["SQLALCHEMY_DATABASE_URI"], redis_url=redis.url
    )
    try:
        with serve(settings) as client:
            yield client.as_user(admin_token), client.as_user(user_token)
    finally:
        redis.remove()


@pytest.mark.parametrize("path", ROUTES)
def test_admin_routes_need_an_admin(api: Api, user_api: Api, path: str) -> None:
    assert_problem(api.get(path), 401)
    assert_problem(user_api.get(path), 403)


def test_queue_depths_and_job_statistics_count_what_waits(idle_stack: tuple[Api, Api]) -> None:
    admin, user = idle_stack
    empty = admin.get("/api/admin/queues")
    assert empty.status_code == 200
    assert empty.headers["Cache-Control"] == "no-store"
    assert empty.json() == {"queues": [{"name": "default", "depth": 0},
                                       {"name": "bulk", "depth": 0},
                                       {"name": "maintenance", "depth": 0}]}  # fmt: skip
    assert admin.get("/api/admin/jobs/stats").json() == {
        "by_status": {}, "by_type": {}, "by_type_and_status": {},
        "oldest_queued_age_seconds": None,
    }  # fmt: skip

    for job in [{"type": "books.report"}] * 3 + [{"type": "books.export"}] * 2:
        assert user.post("/api/jobs", json=job).status_code == 202
    cancelled = user.post("/api/jobs", json={"type": "books.report"}).json()["id"]
    assert user.post(f"/api/jobs/{cancelled}/cancel").status_code == 202
    time.sleep(0.2)  # the oldest job is measurably old

    depths = {q["name"]: q["depth"] for q in admin.get("/api/admin/queues").json()["queues"]}
    # The cancelled job's message is still in the queue: a worker drops it when taken.
    assert depths == {"default": 4, "bulk": 2, "maintenance": 0}
    stats = admin.get("/api/admin/jobs/stats")
    assert stats.status_code == 200
    body = stats.json()
    assert body["by_status"] == {"queued": 5, "cancelled": 1}
    assert body["by_type"] == {"books.report": 4, "books.export": 2}
    assert body["by_type_and_status"] == {
        "books.report": {"queued": 3, "cancelled": 1}, "books.export": {"queued": 2},
    }  # fmt: skip
    assert 0.2 <= body["oldest_queued_age_seconds"] < 60


def test_workers_lists_the_live_worker_its_queues_and_the_job_it_runs(
    admin_api: Api, user_api: Api, worker: CeleryProcess
) -> None:
    idle = _our_worker(admin_api, worker)
    assert idle["queues"] == ["bulk", "default", "maintenance"]
    assert idle["active"] == []
    assert idle["last_heartbeat"].endswith("Z")

    rows = [{"title": f"Busy {n}", "author": "Someone"} for n in range(30_000)]
    job_id = user_api.post("/api/jobs", json={"type": "books.import",
                                             "params": {"books": rows}}).json()["id"]  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        active: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not active:
            active = _our_worker(admin_api, worker)["active"] or []
        assert active, "the import never showed as an active task"
        assert active[0]["job_id"] == job_id
        assert active[0]["task"] == "folio.jobs.books.import"
        assert active[0]["task_id"]
    finally:
        user_api.post(f"/api/jobs/{job_id}/cancel")
        user_api.get(f"/api/jobs/{job_id}?wait=20")


def test_queues_and_workers_are_503_naming_the_broker_when_it_is_down(
    app: Flask, make_user: MakeUser, redis_server: RedisServer
) -> None:
    token = make_user(role="admin")[0]["tokens"]["access_token"]
    settings = test_settings(
        database_url=app.config["SQLALCHEMY_DATABASE_URI"], redis_url=redis_server.url,
        broker_url=f"redis://127.0.0.1:{free_port()}/0",
    )  # fmt: skip
    with serve(settings) as client:
        admin = client.as_user(token)
        for path in ROUTES[:2]:
            body = assert_problem(admin.get(path), 503)
            assert "broker is unavailable" in body["detail"]
        assert admin.get("/api/admin/jobs/stats").status_code == 200  # needs no broker


def _our_worker(admin: Api, worker: CeleryProcess) -> dict[str, Any]:
    response = admin.get("/api/admin/workers")
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    listed = {w["name"]: w for w in response.json()["workers"]}
    ours = [w for name, w in listed.items() if name.startswith(f"test{worker.starts}-")]
    assert len(ours) == 1, listed
    return ours[0]


def test_workers_answers_after_a_broker_restart(app: Flask, make_user: MakeUser) -> None:
    """The pooled broker connection is stale after a restart: asked again, not a 503."""
    redis = RedisServer(persist=True)  # like production's main Redis
    token = make_user(role="admin")[0]["tokens"]["access_token"]
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    worker = CeleryProcess("worker", worker_env(database_url, redis.url))
    try:
        redis.start()
        worker.start()
        with serve(test_settings(database_url=database_url, redis_url=redis.url)) as client:
            admin = client.as_user(token)
            assert admin.get("/api/admin/workers").status_code == 200
            redis.stop()
            redis.start()
            response = admin.get("/api/admin/workers")
            assert response.status_code == 200, response.text
            names = [w["name"] for w in response.json()["workers"]]
            assert [n for n in names if n.startswith(f"test{worker.starts}-")], names
    finally:
        worker.stop()
        redis.remove()
