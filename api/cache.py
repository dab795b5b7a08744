"""Cached public catalog reads (Flask-Caching on the cache Redis, its own database).

``cached_payload(compute)`` answers a read from the cache or computes and stores it. The
key holds the catalog version (``shared.services.catalog_cache``), the path and the
whole query string, sorted: different pages and filters never share an entry, and a
write makes every entry unreachable at once. When the cache Redis cannot answer, reads
go to the database (never a 500), and the first failure of an incident is logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import redis
from flask import Flask, current_app, request
from flask_caching import Cache

from shared.config import Settings
from shared.services.catalog_cache import CACHE_PREFIX, VERSION_KEY

log = logging.getLogger(__name__)
TTL = 300  # seconds an entry lives even if no write makes it unreachable first
Payload = tuple[Any, dict[str, str]]  # body and headers of a public read


def init_cache(app: Flask, settings: Settings) -> Cache:
    cache = Cache(app, config={
        "CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": settings.cache_redis_url,
        "CACHE_KEY_PREFIX": CACHE_PREFIX, "CACHE_DEFAULT_TIMEOUT": TTL,
        "CACHE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    })  # fmt: skip
    app.extensions["folio_cache"] = cache
    return cache


def _cache() -> Cache:
    cache: Cache = current_app.extensions["folio_cache"]
    return cache


class _Outage:
    """Log the first cache failure of an incident, not one per request."""

    down = False

    @classmethod
    def failed(cls, exc: Exception) -> None:
        if not cls.down:
            log.warning("cache unavailable, reading from the database: %s", exc)
        cls.down = True

    @classmethod
    def worked(cls) -> None:
        if cls.down:
            log.warning("cache available again")
        cls.down = False


def cached_payload(compute: Callable[[], Payload]) -> Payload:
    """The read's body and headers, from the cache when this version has them."""
    cache = _cache()
    try:
        version = cache.get(VERSION_KEY) or 0
        key = _key(version)
        hit = cache.get(key)
    except redis.RedisError as exc:
        _Outage.failed(exc)
        return compute()
    _Outage.worked()
    if hit is not None:
        body, headers = hit
        return body, headers
    payload = compute()
    try:
        cache.set(key, payload)
    except redis.RedisError as exc:
        _Outage.failed(exc)
    return payload


def _key(version: int) -> str:
    query = urlencode(sorted(request.args.items(multi=True)))
    digest = hashlib.sha256(f"{request.path}?{query}".encode()).hexdigest()
    return f"books:v{version}:{digest}"


def catalog_changed() -> None:
    """Call after a commit that changed books: every cached read is now unreachable."""
    try:
        _cache().cache.inc(VERSION_KEY)
    except redis.RedisError as exc:
        _Outage.failed(exc)
