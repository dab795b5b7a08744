"""Beat's schedule follows the settings: intervals, and warming switched off with 0."""

from __future__ import annotations

from shared.config import Settings
from shared.job_types import (
    FLUSH_VIEWS_TASK,
    PURGE_EXPIRED_TASK,
    RECOVER_JOBS_TASK,
    WARM_CACHE_TASK,
)
from worker.app import create_celery

BASE = {"FOLIO_ENV": "testing", "DATABASE_URL": "sqlite://", "REDIS_URL": "redis://127.0.0.1:1/0"}


def schedule(**env: str) -> dict[str, tuple[str, float]]:
    celery = create_celery(Settings.from_env(BASE | env))
    return {name: (entry["task"], entry["schedule"])
            for name, entry in celery.conf.beat_schedule.items()}  # fmt: skip


def test_every_housekeeping_task_runs_at_its_interval() -> None:
    assert schedule(JOB_SWEEP_INTERVAL="7", POPULAR_FLUSH_INTERVAL="20",
                    CACHE_WARM_INTERVAL="120") == {
        "recover-jobs": (RECOVER_JOBS_TASK, 7.0),
        "purge-expired": (PURGE_EXPIRED_TASK, 3600.0),
        "flush-views": (FLUSH_VIEWS_TASK, 20.0),
        "warm-cache": (WARM_CACHE_TASK, 120.0),
    }  # fmt: skip


def test_a_warm_interval_of_zero_switches_the_warming_off() -> None:
    assert "warm-cache" not in schedule(CACHE_WARM_INTERVAL="0")
    assert "flush-views" in schedule(CACHE_WARM_INTERVAL="0")
