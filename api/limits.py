"""Rate limits (API.md section 5): Flask-Limiter on Redis, shared by every process.

One ``Limiter`` per app (it keeps its storage on the instance). Keys: the user id for a
valid bearer token, else the client address as seen through ``TRUSTED_PROXIES`` hops.
Defaults depend on the caller's tier, read from the database like everything else about
the caller; some routes add their own limit. Headers and the 429 problem are built here
from the limits the request was counted against (Flask-Limiter's own are HTML and
``Retry-After`` on every answer). When Redis cannot count, requests pass (fail open):
the first failure of an incident is logged, every one is counted.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, cast

import redis
from flask import Blueprint, Flask, Response, current_app, g, has_request_context, request
from flask_limiter import Limiter, RateLimitExceeded, RequestLimit
from limits.storage import RedisStorage
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response as WerkzeugResponse

from api.auth import current_user
from api.errors import problem
from api.extensions import folio
from shared.config import Settings
from shared.db import db
from shared.errors import AuthenticationFailed, DependencyUnavailable
from shared.metrics import LIMITER_ERRORS, RATE_LIMITED
from shared.models import User

log = logging.getLogger(__name__)
KEY_PREFIX = "folio:limits"
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
EXEMPT_BLUEPRINTS = ("health", "metrics", "docs", "docs_ui")


class StorageHealth(logging.Filter):
    """Count the limiter's storage failures; let only the first of an incident be logged."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0
        self.in_incident = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Failed to"):
            return True
        self.failures += 1
        LIMITER_ERRORS.inc()
        first = not self.in_incident
        self.in_incident = True
        return first

    def recovered(self) -> None:
        if self.in_incident:
            log.warning("rate limiting works again (%d failed checks so far)", self.failures)
            self.in_incident = False


# Per process, like the logger it filters; /metrics adds the processes up.
STORAGE_HEALTH = StorageHealth()


class CountingRedisStorage(RedisStorage):
    """limits' Redis storage, which remembers what each count of this request returned.

    Counting a fixed window is one Lua call that also returns the key's TTL; the window
    stats of a key this request counted (remaining, reset: the headers) are answered from
    that, instead of a ``GET`` and a ``TTL`` per limit: one round trip per limit instead
    of three. They show the count as of this request's hit. Flask-Limiter's own check
    is unchanged. Selected by the ``folio+redis://`` scheme.
    """

    STORAGE_SCHEME = ["folio+redis", "folio+rediss"]  # noqa: RUF012 - as limits declares it
    SCRIPT_INCR_EXPIRE_TTL = b"""
        local current = redis.call("incrby", KEYS[1], ARGV[2])
        if tonumber(current) == tonumber(ARGV[2]) then
            redis.call("expire", KEYS[1], ARGV[1])
        end
        return {current, redis.call("ttl", KEYS[1])}
    """

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri.removeprefix("folio+"), **options)

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_incr_expire_ttl = self.get_connection().register_script(
            self.SCRIPT_INCR_EXPIRE_TTL
        )

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        count, ttl = self.lua_incr_expire_ttl([self.prefixed_key(key)], [expiry, amount])
        if has_request_context():
            g.setdefault("limit_counts", {})[key] = (int(count), max(int(ttl), 0) + time.time())
        return int(count)

    def _counted(self, key: str) -> tuple[int, float] | None:
        return g.get("limit_counts", {}).get(key) if has_request_context() else None

    def get(self, key: str) -> int:
        counted = self._counted(key)
        return counted[0] if counted else super().get(key)

    def get_expiry(self, key: str) -> float:
        counted = self._counted(key)
        return counted[1] if counted else super().get_expiry(key)


def caller() -> User | None:
    """The authenticated caller, or ``None`` (no token, a bad one, or auth unavailable)."""
    if "limit_caller" not in g:
        user = None
        if request.headers.get("Authorization"):
            try:
                user = current_user()
            except (AuthenticationFailed, DependencyUnavailable):
                user = None
            except SQLAlchemyError:  # the view answers 503 itself
                db.session.rollback()
        g.limit_caller = user
    return g.limit_caller


def client_key() -> str:
    return f"ip:{request.remote_addr or 'unknown'}"


def caller_key() -> str:
    user = caller()
    return f"user:{user.id}" if user is not None else client_key()


def _by_tier(prefix: str) -> Callable[[], str]:
    def limit() -> str:
        settings = folio().settings
        user = caller()
        tier = user.tier if user is not None else "free"
        return str(getattr(settings, f"{prefix}_{tier}"))

    return limit


def default_limit() -> str:
    """Anonymous clients: ``RATELIMIT_DEFAULT``; authenticated ones: their tier's."""
    if caller() is None:
        return folio().settings.ratelimit_default
    return _by_tier("ratelimit")()


jobs_limit = _by_tier("ratelimit_jobs")


def init_limiter(app: Flask) -> Limiter:
    """The app's limiter, with per-route limits added to the views by endpoint."""
    settings: Settings = app.extensions["folio"].settings
    limiter = Limiter(
        caller_key,
        app=app,
        application_limits=[default_limit],  # one budget per client across the API
        storage_uri=f"folio+{settings.redis_url}",
        # The storage's own prefix, so that Folio's keys share one namespace ("folio:").
        storage_options={
            "key_prefix": KEY_PREFIX,
            "socket_connect_timeout": 1,
            "socket_timeout": 1,
        },
        strategy="fixed-window",
        swallow_errors=True,
        headers_enabled=False,
        enabled=settings.ratelimit_enabled,
    )
    if STORAGE_HEALTH not in limiter.logger.filters:  # one logger for every app
        limiter.logger.addFilter(STORAGE_HEALTH)
    limiter.request_filter(lambda: request.method == "OPTIONS")
    for name in EXEMPT_BLUEPRINTS:
        limiter.exempt(cast(Blueprint, app.blueprints[name]))
    route_limits: dict[str, Any] = {
        "auth.login": limiter.limit(lambda: folio().settings.ratelimit_login,
                                    key_func=client_key, override_defaults=False),
        "search.search": limiter.limit(lambda: folio().settings.ratelimit_search,
                                       override_defaults=False),
    }  # fmt: skip
    jobs = limiter.shared_limit(jobs_limit, scope="jobs", override_defaults=False)
    for endpoint in ("jobs.submit_job", "imports.import_csv", "jobs.retry_job"):
        route_limits[endpoint] = jobs
    for endpoint, decorate in route_limits.items():
        app.view_functions[endpoint] = decorate(app.view_functions[endpoint])
    app.before_request(_remember_api_wide_limits)  # runs after the limiter's own check
    app.after_request(_rate_limit_headers)
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    app.extensions["folio_limiter"] = limiter
    return limiter


def _limiter() -> Limiter:
    limiter: Limiter = current_app.extensions["folio_limiter"]
    return limiter


def _rate_limit_headers(response: Response) -> Response:
    """Both header sets for the limit closest to running out (API.md section 5)."""
    limits = _counted()
    if not limits:
        return response
    closest = min(limits, key=lambda item: (item[1], item[2]))
    limit, remaining, reset_at = closest
    now = time.time()
    response.headers["X-RateLimit-Limit"] = str(limit.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(math.ceil(reset_at))
    response.headers["RateLimit-Policy"] = ", ".join(
        f'"{_policy(item[0])}";q={item[0].limit.amount};w={item[0].limit.get_expiry()}'
        for item in limits
    )
    seconds = max(0, math.ceil(reset_at - now))
    response.headers["RateLimit"] = f'"{_policy(limit)}";r={remaining};t={seconds}'
    return response


def _remember_api_wide_limits() -> None:
    g.api_wide_limits = list(_limiter().current_limits)


def _counted() -> list[tuple[RequestLimit, int, float]]:
    """The limits this request was counted against: (limit, remaining, reset time)."""
    # A route's own limits replace the API-wide ones in Flask-Limiter's report: add them.
    limits = {item.key: item for item in (*g.get("api_wide_limits", ()),
                                          *_limiter().current_limits)}  # fmt: skip
    try:
        counted = [(item, max(0, item.window[1]), item.window[0]) for item in limits.values()]
    except redis.RedisError:
        return []
    if counted:
        STORAGE_HEALTH.recovered()
    return counted


def _policy(item: RequestLimit) -> str:
    """A name per policy: the window, after the route's scope for a route's own limit."""
    limit = item.limit
    window = limit.GRANULARITY.name
    if limit.multiples > 1:
        window = f"{limit.multiples}{window}"
    scope = _scope(item)
    return window if scope == "global" else f"{scope}-{window}"


def _scope(item: RequestLimit) -> str:
    """``global`` for the API-wide budget, else the route's own limit (``auth.login``)."""
    return str(item.request_args[-1])


def _too_many_requests(exc: RateLimitExceeded) -> WerkzeugResponse:
    breached = _limiter().current_limit
    reset_at = breached.window[0] if breached is not None else time.time() + 1
    retry_after = max(1, math.ceil(reset_at - time.time()))
    text = str(breached.limit) if breached is not None else str(exc.description)
    RATE_LIMITED.labels(_scope(breached) if breached is not None else "unknown").inc()
    return problem(
        429, f"Rate limit of {text} exceeded; retry in {retry_after} s.",
        kind=QUOTA_EXCEEDED, title="Too Many Requests",
        headers={"Retry-After": str(retry_after)}, retry_after=retry_after, limit=text,
    )  # fmt: skip
