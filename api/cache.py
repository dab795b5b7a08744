"""Cached public catalog reads on the web side (Flask-Caching on the cache Redis).

``catalog_read(kind)`` answers a public read from the cache or computes it, the same
way a worker warming the cache does (``shared.services.catalog_reads``); the cache
itself (versioned keys, stampede lock, outages) is ``shared.services.catalog_cache``.
An entry is the rendered response (JSON text, ``ETag``, ``Link``): a hit neither
serializes nor hashes. ``catalog_changed()`` after a commit that changed books makes
every cached read stale.
"""

from __future__ import annotations

from typing import cast

from flask import Flask, Response, current_app, request
from flask_caching import Cache
from werkzeug.http import unquote_etag

from api.extensions import folio
from api.json import FolioJSONProvider
from shared.config import Settings
from shared.db import db
from shared.services import catalog_reads
from shared.services.catalog_cache import CACHE_PREFIX, CatalogCache, JsonRedisCache, cache_client
from shared.services.catalog_reads import BOOK, POPULAR, CatalogRead

NO_QUERY = (BOOK, POPULAR)  # reads that take no parameters: a query string is ignored


def init_cache(app: Flask, settings: Settings) -> CatalogCache:
    client = cache_client(settings.cache_redis_url)
    cache = Cache(app, config={
        "CACHE_TYPE": f"{JsonRedisCache.__module__}.{JsonRedisCache.__name__}"
                      if settings.cache_enabled else "NullCache",
        "CACHE_REDIS_HOST": client, "CACHE_KEY_PREFIX": CACHE_PREFIX,
        "CACHE_DEFAULT_TIMEOUT": settings.cache_ttl,
    })  # fmt: skip
    backend = cast(JsonRedisCache, cache.cache) if settings.cache_enabled else None
    catalog = CatalogCache(backend, client, ttl=settings.cache_ttl,
                           ttls={POPULAR: settings.popular_flush_interval})  # fmt: skip
    app.extensions["folio_cache"] = catalog
    return catalog


def catalog_cache() -> CatalogCache:
    cache: CatalogCache = current_app.extensions["folio_cache"]
    return cache


def catalog_read(kind: str, **ids: int) -> Response:
    """The public read of this request (path, query and ``ids`` from the path), with
    ``Cache-Control: no-cache`` and a 304 when ``If-None-Match`` holds its ETag."""
    args = {} if kind in NO_QUERY else request.args.to_dict()
    read = CatalogRead.of(kind, request.path, args, **ids)
    cache = catalog_cache()
    reader = catalog_reads.Reader(db.session, folio().cursors, cache)
    body, headers = cache.read(
        read, lambda: catalog_reads.render(catalog_reads.compute(reader, read))
    )
    etag = headers["ETag"]
    if request.if_none_match.contains_weak(unquote_etag(etag)[0]):  # as RFC 9110 compares
        return Response(status=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
    response = Response(body, content_type=FolioJSONProvider.mimetype, headers=headers)
    response.headers["Cache-Control"] = "no-cache"
    return response


def catalog_changed() -> None:
    """Call after a commit that changed books: every cached read is now unreachable."""
    catalog_cache().bump()
