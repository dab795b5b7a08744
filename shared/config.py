"""Typed settings, read once from the environment by the entry shims.

Nothing else in Folio reads ``os.environ``: factories take a ``Settings`` object, so tests
build one by hand and production fails fast on a bad value.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limits import parse_many

ENVIRONMENTS = ("development", "testing", "production")
DEV_SECRET = "dev-secret-change-me-0123456789abcdef"  # noqa: S105 - refused in production
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_REDIS_URL = "redis://127.0.0.1:6399/0"
DEV_DATABASE_URL = "sqlite:///var/folio.db"
POSITIVE = ("access_token_ttl", "refresh_token_ttl", "jobs_active_free", "jobs_active_standard",
            "jobs_active_premium", "job_result_ttl", "job_max_attempts", "import_max_rows",
            "max_content_length", "job_stale_after", "job_requeue_after", "job_sweep_interval",
            "job_purge_interval", "job_time_limit", "worker_concurrency", "cache_ttl",
            "cache_warm_top", "popular_flush_interval")  # fmt: skip
NON_NEGATIVE = ("trusted_proxies", "cache_warm_interval")  # 0: none / switched off
# Celery's Redis transport redelivers an unacknowledged message after this long; a job
# allowed to run longer would be started again while still running.
VISIBILITY_TIMEOUT = 3600
LIMITS = ("ratelimit_default", "ratelimit_free", "ratelimit_standard", "ratelimit_premium",
          "ratelimit_login", "ratelimit_search", "ratelimit_jobs_free",
          "ratelimit_jobs_standard", "ratelimit_jobs_premium")  # fmt: skip


class ConfigError(ValueError):
    """A setting is missing or malformed; the process must not start."""


def normalize_database_url(url: str) -> str:
    """Pick our drivers for ``postgres://``/``postgresql://`` and anchor relative SQLite paths.

    Flask-SQLAlchemy would otherwise resolve ``sqlite:///var/folio.db`` against the
    instance folder, not the project root that the README and ``make run`` talk about.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url[len("sqlite:///") :]
        if relative and not relative.startswith(":memory:"):
            return f"sqlite:///{PROJECT_ROOT / relative}"
    return url


def _bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {value!r}") from None


def _with_db(url: str, db: int) -> str:
    """The same Redis server with another database number (``redis://h:p/N``)."""
    base, _, tail = url.partition("?")
    head, sep, last = base.rpartition("/")
    if sep and "//" in head and (last.isdigit() or last == ""):
        base = f"{head}/{db}"
    else:
        base = f"{base}/{db}"
    return base + (f"?{tail}" if tail else "")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every setting Folio reads; names match API.md section 8."""

    env: str = "development"
    database_url: str = ""  # development default: sqlite:///var/folio.db
    redis_url: str = ""  # development default: the embedded Redis (DEV_REDIS_URL)
    broker_url: str = ""  # default: REDIS_URL
    cache_redis_url: str = ""
    cache_enabled: bool = True
    cache_ttl: int = 300  # seconds a cached read lives if no write makes it stale first
    cache_warm_interval: int = 300  # beat runs the cache warming this often (0: never)
    cache_warm_top: int = 20  # how many of the hottest reads a warming recomputes
    popular_flush_interval: int = 30  # beat adds the counted views to the database
    secret_key: str = DEV_SECRET
    jwt_secret_key: str = ""
    jwt_issuer: str = "folio"
    jwt_audience: str = "folio-api"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 604800
    cors_origins: tuple[str, ...] = ("*",)
    trusted_proxies: int = 0
    ratelimit_enabled: bool = True
    ratelimit_default: str = "200 per day;50 per hour"
    ratelimit_free: str = "100 per hour"
    ratelimit_standard: str = "1000 per hour"
    ratelimit_premium: str = "10000 per hour"
    ratelimit_login: str = "10 per minute"
    ratelimit_search: str = "5 per minute"
    ratelimit_jobs_free: str = "10 per hour"
    ratelimit_jobs_standard: str = "100 per hour"
    ratelimit_jobs_premium: str = "1000 per hour"
    jobs_active_free: int = 2
    jobs_active_standard: int = 10
    jobs_active_premium: int = 50
    job_result_ttl: int = 86400
    job_max_attempts: int = 3
    import_max_rows: int = 100000
    job_stale_after: int = 60
    job_requeue_after: int = 300
    job_sweep_interval: int = 30
    job_purge_interval: int = 3600
    job_time_limit: int = 1800
    worker_concurrency: int = 2
    max_content_length: int = 33554432
    log_level: str = "INFO"
    # Not environment variables: cost of password hashing (lowered only by tests).
    password_time_cost: int = 3
    password_memory_cost: int = 65536

    def __post_init__(self) -> None:
        if self.env == "production":
            for name in ("database_url", "redis_url"):
                if not getattr(self, name):
                    raise ConfigError(f"production needs {name.upper()}")
        database_url = self.database_url or DEV_DATABASE_URL
        object.__setattr__(self, "database_url", normalize_database_url(database_url))
        object.__setattr__(self, "redis_url", self.redis_url or DEV_REDIS_URL)
        object.__setattr__(self, "broker_url", self.broker_url or self.redis_url)
        if not self.jwt_secret_key:
            object.__setattr__(self, "jwt_secret_key", self.secret_key)
        if not self.cache_redis_url:
            object.__setattr__(self, "cache_redis_url", _with_db(self.redis_url, 1))
        self.validate()

    def validate(self) -> None:
        """Refuse settings that would be unsafe or meaningless."""
        if self.env not in ENVIRONMENTS:
            raise ConfigError(f"FOLIO_ENV must be one of {', '.join(ENVIRONMENTS)}")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"LOG_LEVEL {self.log_level!r} is not a logging level")
        for name in POSITIVE:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.upper()} must be a positive integer")
        if self.job_time_limit > VISIBILITY_TIMEOUT - 300:
            raise ConfigError(
                f"JOB_TIME_LIMIT must stay 300 s below the broker's visibility timeout "
                f"({VISIBILITY_TIMEOUT} s), or a running job would be delivered again"
            )
        for name in NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.upper()} must be 0 or more")
        self._validate_limits()
        if self.env == "production":
            self._validate_production()

    def _validate_limits(self) -> None:
        for name in LIMITS:
            try:
                parse_many(getattr(self, name))
            except ValueError:
                raise ConfigError(
                    f"{name.upper()} is not a rate limit like '10 per minute'"
                ) from None

    def _validate_production(self) -> None:
        if DEV_SECRET in (self.secret_key, self.jwt_secret_key):
            raise ConfigError("production refuses the development SECRET_KEY/JWT_SECRET_KEY")
        if len(self.secret_key) < 32 or len(self.jwt_secret_key) < 32:
            raise ConfigError("SECRET_KEY and JWT_SECRET_KEY need at least 32 characters")
        if "*" in self.cors_origins:
            raise ConfigError("CORS_ORIGINS may not be '*' in production: list the origins")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (tests and tools)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from the environment (and ``.env`` when present)."""
        if environ is None:
            from dotenv import dotenv_values  # noqa: PLC0415 - only the shims read .env

            environ = {**dotenv_values(PROJECT_ROOT / ".env"), **os.environ}  # type: ignore[dict-item]
        env = environ.get("FOLIO_ENV", "development").strip().lower()
        get = environ.get
        origins = get("CORS_ORIGINS") or ("" if env == "production" else "*")
        values: dict[str, Any] = {
            "env": env,
            "database_url": get("DATABASE_URL", ""),
            "redis_url": get("REDIS_URL", ""),
            "broker_url": get("BROKER_URL", ""),
            "cache_redis_url": get("CACHE_REDIS_URL", ""),
            "secret_key": get("SECRET_KEY") or DEV_SECRET,
            "jwt_secret_key": get("JWT_SECRET_KEY", ""),
            "cors_origins": tuple(o.strip() for o in origins.split(",") if o.strip()),
            "ratelimit_enabled": _bool(get("RATELIMIT_ENABLED", "true"), "RATELIMIT_ENABLED"),
            "cache_enabled": _bool(get("CACHE_ENABLED", "true"), "CACHE_ENABLED"),
            "log_level": get("LOG_LEVEL", "INFO").upper(),
        }
        for name in ("jwt_issuer", "jwt_audience", *LIMITS):
            if get(name.upper()):
                values[name] = get(name.upper())
        for name in (*POSITIVE, *NON_NEGATIVE):
            raw = get(name.upper())
            if raw:
                values[name] = _int(raw, name.upper())
        return cls(**values)
