"""docker-compose.yml, the Procfile and the Dockerfile agree with each other and the code.

No Docker engine runs here: the files are parsed, and every command, module, file and
variable they name is looked up in the repository.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import re
import shlex
from typing import Any

import yaml

from shared.config import PROJECT_ROOT, Settings
from shared.job_types import QUEUES

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROCFILE = dict(
    line.split(": ", 1)
    for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
ROLES = ("release", "web", "worker", "beat")
# Variables read outside Settings: gunicorn's own and gunicorn.conf.py's.
GUNICORN_VARS = {"PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT",
                 "GUNICORN_WORKER_CLASS", "PROMETHEUS_MULTIPROC_DIR"}  # fmt: skip
SETTINGS_VARS = {f.name.upper() for f in dataclasses.fields(Settings)} | {"FOLIO_ENV"}


def _flags(argv: list[str]) -> dict[str, str]:
    """``--name value`` pairs of a command line."""
    return {a: b for a, b in itertools.pairwise(argv) if a.startswith("--")}


def test_compose_runs_the_procfile_commands_on_our_image() -> None:
    assert set(PROCFILE) == set(ROLES)
    for role, line in PROCFILE.items():
        assert SERVICES[role]["command"] == shlex.split(line), role
        assert SERVICES[role]["build"] == ".", role  # one image for every role


def test_every_procfile_command_names_code_that_exists() -> None:
    web = shlex.split(PROCFILE["web"])
    assert web[:3] == ["gunicorn", "--config", "gunicorn.conf.py"]
    assert (PROJECT_ROOT / web[2]).is_file()
    module, _, attribute = web[3].partition(":")
    assert importlib.util.find_spec(module) is not None
    assert re.search(rf"^{attribute} = ", (PROJECT_ROOT / "api" / "wsgi.py").read_text(), re.M)
    assert shlex.split(PROCFILE["release"]) == ["flask", "--app", "api", "db", "upgrade"]
    assert (PROJECT_ROOT / "migrations" / "env.py").is_file()
    for role in ("worker", "beat"):
        argv = shlex.split(PROCFILE[role])
        assert argv[:4] == ["celery", "--app", "worker.main", role]
        assert importlib.util.find_spec("worker.main") is not None


def test_the_worker_consumes_every_queue_of_the_registry() -> None:
    argv = shlex.split(PROCFILE["worker"])
    assert _flags(argv)["--queues"].split(",") == list(QUEUES)


def test_beat_runs_once_and_workers_scale() -> None:
    assert SERVICES["beat"]["deploy"]["replicas"] == 1
    for fixed in ("container_name", "ports", "hostname"):
        assert fixed not in SERVICES["worker"], fixed  # would clash with --scale worker=N


def test_every_compose_variable_is_a_setting_the_code_reads() -> None:
    for role in ROLES:
        assert set(SERVICES[role]["environment"]) <= SETTINGS_VARS | GUNICORN_VARS, role
    assert "DATABASE_URL" in SERVICES["web"]["environment"]


def test_the_two_redis_roles_are_configured_for_their_jobs() -> None:
    env = SERVICES["web"]["environment"]
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert env["CACHE_REDIS_URL"].startswith("redis://cache:")
    main = _flags(SERVICES["redis"]["command"])
    assert main["--maxmemory-policy"] == "noeviction"
    assert main["--appendonly"] == "yes"
    assert "redisdata:/data" in SERVICES["redis"]["volumes"]
    cache = _flags(SERVICES["cache"]["command"])
    assert cache["--maxmemory-policy"] == "allkeys-lru"
    assert cache["--maxmemory"]
    assert cache["--save"] == ""
    assert cache["--appendonly"] == "no"
    assert "volumes" not in SERVICES["cache"]


def test_every_service_has_a_health_check_or_is_one_shot() -> None:
    for name, service in SERVICES.items():
        assert "healthcheck" in service or service.get("restart") == "no", name


def test_start_order_waits_for_healthy_dependencies_and_the_migration() -> None:
    for name, service in SERVICES.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in SERVICES, (name, dependency)
            expected = "service_completed_successfully" if dependency == "release" else (
                "service_healthy")  # fmt: skip
            assert rule == {"condition": expected}, (name, dependency)
    assert set(SERVICES["release"]["depends_on"]) == {"postgres"}
    for role in ("web", "worker", "beat"):
        assert {"release", "redis", "cache"} <= set(SERVICES[role]["depends_on"]), role


def test_flower_is_behind_a_profile_on_the_same_broker() -> None:
    profiled = {name for name, service in SERVICES.items() if "profiles" in service}
    assert profiled == {"flower"}
    assert SERVICES["flower"]["profiles"] == ["ops"]
    assert "--broker=redis://redis:6379/0" in SERVICES["flower"]["command"]
    assert all(port.startswith("127.0.0.1:") for port in SERVICES["flower"]["ports"])


def test_the_image_is_slim_runs_as_non_root_and_holds_what_the_commands_need() -> None:
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert stages
    assert all(image.startswith("python:3.11-slim") for image in stages)
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users
    assert users[-1] not in {"root", "0"}
    copied = " ".join(re.findall(r"^COPY (.+)$", DOCKERFILE, re.M))
    for needed in ("api", "shared", "worker", "migrations", "gunicorn.conf.py"):
        assert needed in copied, needed
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".env", "var", "tests"} <= set(ignored)


def test_env_example_documents_every_setting() -> None:
    documented = {
        line.split("=", 1)[0]
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    internal = {"ENV", "PASSWORD_TIME_COST", "PASSWORD_MEMORY_COST"}
    assert (SETTINGS_VARS - internal) | GUNICORN_VARS <= documented
