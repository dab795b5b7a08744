"""docker-compose.yml and the Procfile run the same commands, with settings the code reads."""

from __future__ import annotations

import dataclasses
import shlex

import yaml

from shared.config import PROJECT_ROOT, Settings
from shared.job_types import QUEUES

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
PROCFILE = dict(
    line.split(": ", 1)
    for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)
# Variables read outside Settings: gunicorn's own and gunicorn.conf.py's.
GUNICORN_VARS = {"PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT",
                 "PROMETHEUS_MULTIPROC_DIR"}  # fmt: skip


def test_compose_runs_the_procfile_commands() -> None:
    services = COMPOSE["services"]
    assert set(PROCFILE) == {"release", "web", "worker", "beat"}
    for role, line in PROCFILE.items():
        assert services[role]["command"] == shlex.split(line), role


def test_the_worker_consumes_every_queue_of_the_registry() -> None:
    argv = shlex.split(PROCFILE["worker"])
    assert argv[:4] == ["celery", "--app", "worker.main", "worker"]
    assert argv[argv.index("--queues") + 1].split(",") == list(QUEUES)
    assert shlex.split(PROCFILE["beat"])[:4] == ["celery", "--app", "worker.main", "beat"]


def test_beat_runs_once_and_workers_scale() -> None:
    services = COMPOSE["services"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "container_name" not in services["worker"]
    assert "ports" not in services["worker"]


def test_every_compose_variable_is_a_setting_the_code_reads() -> None:
    known = {f.name.upper() for f in dataclasses.fields(Settings)} | {"FOLIO_ENV"}
    known |= GUNICORN_VARS
    for name in ("release", "web", "worker", "beat"):
        service = COMPOSE["services"][name]
        assert set(service["environment"]) <= known, name


def test_every_service_has_a_health_check_or_is_one_shot() -> None:
    for name, service in COMPOSE["services"].items():
        assert "healthcheck" in service or service.get("restart") == "no", name


def test_env_example_documents_every_setting() -> None:
    documented = {
        line.split("=", 1)[0]
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    internal = {"ENV", "PASSWORD_TIME_COST", "PASSWORD_MEMORY_COST"}
    settings = {f.name.upper() for f in dataclasses.fields(Settings)} - internal
    assert settings | {"FOLIO_ENV", "PORT", "WEB_CONCURRENCY"} <= documented
