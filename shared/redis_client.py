"""Redis connections, and the one place that turns Redis outages into a domain error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from shared.errors import DependencyUnavailable


def make_redis(url: str) -> redis.Redis:
    """A client that fails fast: a dead Redis costs a request two seconds, not minutes."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=2,
        health_check_interval=30,
        retry_on_timeout=False,
        decode_responses=True,
    )


@contextmanager
def redis_required(what: str) -> Iterator[None]:
    """Raise ``DependencyUnavailable`` naming ``what`` when Redis cannot answer."""
    try:
        yield
    except redis.RedisError as exc:
        raise DependencyUnavailable(f"Redis is unavailable ({what}).") from exc
