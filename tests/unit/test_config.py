"""Settings are read once from the environment, typed, and fail fast in production."""

from __future__ import annotations

import pytest

from shared.config import DEV_SECRET, PROJECT_ROOT, ConfigError, Settings, normalize_database_url

STRONG = "s" * 40
PROD = {"FOLIO_ENV": "production", "DATABASE_URL": "postgresql://u@db/folio",
        "REDIS_URL": "redis://redis:6379/0", "SECRET_KEY": STRONG}  # fmt: skip


def test_development_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT / 'var/folio.db'}"
    assert settings.redis_url == "redis://127.0.0.1:6399/0"
    assert settings.cache_redis_url == "redis://127.0.0.1:6399/1"
    assert settings.jwt_secret_key == settings.secret_key == DEV_SECRET
    assert settings.cors_origins == ("*",)
    assert (settings.access_token_ttl, settings.refresh_token_ttl) == (900, 604800)
    assert settings.ratelimit_default == "200 per day;50 per hour"
    assert settings.max_content_length == 33554432


def test_every_documented_variable_is_read() -> None:
    env = {
        "ACCESS_TOKEN_TTL": "60", "REFRESH_TOKEN_TTL": "120", "JWT_ISSUER": "i",
        "JWT_AUDIENCE": "a", "CORS_ORIGINS": "https://a.example, https://b.example",
        "TRUSTED_PROXIES": "2", "RATELIMIT_ENABLED": "false", "RATELIMIT_SEARCH": "9 per minute",
        "JOBS_ACTIVE_FREE": "3", "JOB_RESULT_TTL": "10", "JOB_MAX_ATTEMPTS": "5",
        "IMPORT_MAX_ROWS": "7", "MAX_CONTENT_LENGTH": "1000", "LOG_LEVEL": "debug",
        "CACHE_REDIS_URL": "redis://c:6379/4", "JWT_SECRET_KEY": "jwt-key",
    }  # fmt: skip
    settings = Settings.from_env(env)
    assert settings.access_token_ttl == 60
    assert settings.refresh_token_ttl == 120
    assert (settings.jwt_issuer, settings.jwt_audience) == ("i", "a")
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.trusted_proxies == 2
    assert settings.ratelimit_enabled is False
    assert settings.ratelimit_search == "9 per minute"
    assert settings.jobs_active_free == 3
    assert (settings.job_result_ttl, settings.job_max_attempts) == (10, 5)
    assert settings.import_max_rows == 7
    assert settings.max_content_length == 1000
    assert settings.log_level == "DEBUG"
    assert settings.cache_redis_url == "redis://c:6379/4"
    assert settings.jwt_secret_key == "jwt-key"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5/d", "postgresql+psycopg://u:p@h:5/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_database_urls_pick_our_driver(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


def test_relative_sqlite_path_is_anchored_at_the_project_root() -> None:
    assert normalize_database_url("sqlite:///var/x.db") == f"sqlite:///{PROJECT_ROOT}/var/x.db"


def test_cache_url_defaults_to_another_database_of_the_broker_redis() -> None:
    assert Settings.from_env({"REDIS_URL": "redis://r:1/0"}).cache_redis_url == "redis://r:1/1"
    assert Settings.from_env({"REDIS_URL": "redis://r:1"}).cache_redis_url == "redis://r:1/1"
    assert (
        Settings.from_env({"REDIS_URL": "redis://r:1/0?ssl_cert_reqs=none"}).cache_redis_url
        == "redis://r:1/1?ssl_cert_reqs=none"
    )


def test_production_starts_with_real_settings() -> None:
    settings = Settings.from_env(PROD)
    assert settings.env == "production"
    assert settings.cors_origins == ()
    assert settings.database_url == "postgresql+psycopg://u@db/folio"


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL"])
def test_production_refuses_to_start_without_its_services(missing: str) -> None:
    env = {k: v for k, v in PROD.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "changes",
    [
        {"SECRET_KEY": ""},  # falls back to the development secret
        {"SECRET_KEY": DEV_SECRET},
        {"JWT_SECRET_KEY": DEV_SECRET},
        {"SECRET_KEY": "short"},
        {"CORS_ORIGINS": "*"},
    ],
)
def test_production_refuses_development_or_weak_secrets(changes: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(PROD | changes)


@pytest.mark.parametrize(
    "env",
    [
        {"FOLIO_ENV": "staging"},
        {"LOG_LEVEL": "LOUD"},
        {"ACCESS_TOKEN_TTL": "soon"},
        {"RATELIMIT_ENABLED": "maybe"},
        {"ACCESS_TOKEN_TTL": "0"},
        {"MAX_CONTENT_LENGTH": "-1"},
        {"JOB_MAX_ATTEMPTS": "0"},
        {"TRUSTED_PROXIES": "-1"},
        {"RATELIMIT_SEARCH": "five a minute"},
        {"RATELIMIT_DEFAULT": "200 per day;lots"},
    ],
)
def test_malformed_values_fail_fast(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_replace_returns_a_validated_copy() -> None:
    settings = Settings.from_env({})
    assert settings.replace(import_max_rows=5).import_max_rows == 5
    with pytest.raises(ConfigError):
        settings.replace(env="nope")


def test_production_settings_built_in_code_need_their_services_too() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings(env="production", secret_key=STRONG, redis_url="redis://r:6379/0")
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings(env="production", secret_key=STRONG, database_url="postgresql://u@db/f")


def test_job_settings_are_read_and_the_broker_defaults_to_redis() -> None:
    env = {"JOB_STALE_AFTER": "5", "JOB_REQUEUE_AFTER": "6", "JOB_SWEEP_INTERVAL": "7",
           "JOB_PURGE_INTERVAL": "8", "JOB_TIME_LIMIT": "900", "WORKER_CONCURRENCY": "4",
           "REDIS_URL": "redis://r:6379/0"}  # fmt: skip
    settings = Settings.from_env(env)
    assert (settings.job_stale_after, settings.job_requeue_after) == (5, 6)
    assert (settings.job_sweep_interval, settings.job_purge_interval) == (7, 8)
    assert (settings.job_time_limit, settings.worker_concurrency) == (900, 4)
    assert settings.broker_url == "redis://r:6379/0"
    assert Settings.from_env({"BROKER_URL": "redis://b:6379/2"}).broker_url == "redis://b:6379/2"


def test_a_job_time_limit_near_the_visibility_timeout_is_refused() -> None:
    with pytest.raises(ConfigError, match="visibility timeout"):
        Settings.from_env({"JOB_TIME_LIMIT": "3500"})
    with pytest.raises(ConfigError, match="JOB_STALE_AFTER"):
        Settings.from_env({"JOB_STALE_AFTER": "0"})
