"""Cached public catalog reads on the web side (Flask-Caching on the cache Redis).

``catalog_read(kind)`` answers a public read from the cache or computes it, the same
way a worker warming the cache does (``shared.services.catalog_reads``); the cache
itself (versioned keys, stampede lock, outages) is ``shared.services.catalog_cache``.
``catalog_changed()`` after a commit that changed books makes every cached read stale.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_caching import Cache

from api.extensions import folio
from api.http import public_json
from shared.broker import send_housekeeping
from shared.config import Settings
from shared.db import db
from shared.job_types import DROP_DEAD_CACHE_TASK
from shared.services import catalog_reads
from shared.services.catalog_cache import CACHE_PREFIX, CatalogCache, cache_client
from shared.services.catalog_reads import POPULAR, CatalogRead


def init_cache(app: Flask, settings: Settings) -> CatalogCache:
    client = cache_client(settings.cache_redis_url)
    cache = Cache(app, config={
        "CACHE_TYPE": "RedisCache" if settings.cache_enabled else "NullCache",
        "CACHE_REDIS_HOST": client, "CACHE_KEY_PREFIX": CACHE_PREFIX,
        "CACHE_DEFAULT_TIMEOUT": settings.cache_ttl,
    })  # fmt: skip
    backend = cache.cache if settings.cache_enabled else None
    catalog = CatalogCache(backend, client, ttl=settings.cache_ttl)
    app.extensions["folio_cache"] = catalog
    return catalog


def catalog_cache() -> CatalogCache:
    cache: CatalogCache = current_app.extensions["folio_cache"]
    return cache


def catalog_read(kind: str, **ids: int) -> Response:
    """The public read of this request (path, query and ``ids`` from the path)."""
    args = {} if kind == POPULAR else request.args.to_dict()  # takes no parameters
    read = CatalogRead.of(kind, request.path, args, **ids)
    ttl = folio().settings.popular_flush_interval if kind == POPULAR else None
    cache = catalog_cache()
    reader = catalog_reads.Reader(db.session, folio().cursors, cache)
    body, headers = cache.read(read, lambda: catalog_reads.compute(reader, read), ttl=ttl)
    return public_json(body, headers=headers)


def catalog_changed(*, bulk: bool = False) -> None:
    """Call after a commit that changed books: every cached read is now unreachable.

    ``bulk`` (many books changed): a worker also deletes the dead entries now.
    """
    cache = catalog_cache()
    cache.bump()
    if bulk and cache.backend is not None:
        send_housekeeping(folio().celery, DROP_DEAD_CACHE_TASK)
