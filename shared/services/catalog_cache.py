"""The catalog's read cache, as both processes see it: one version number in Redis.

Cached catalog reads are keyed by the catalog version; a write increments it after its
commit, so every cached page written before becomes unreachable in one step, in every
web process (and expires by itself later). The web side caches through Flask-Caching
(``api/cache.py``); a worker that changed the catalog (an import) increments the same
key directly.
"""

from __future__ import annotations

import logging

import redis

log = logging.getLogger(__name__)
CACHE_PREFIX = "folio:cache:"
VERSION_KEY = "books:version"  # under CACHE_PREFIX


def bump_version(store: redis.Redis) -> None:
    """The catalog changed (committed): make every cached read of it unreachable."""
    try:
        store.incr(CACHE_PREFIX + VERSION_KEY)
    except redis.RedisError as exc:  # the cache is then unreachable for readers too
        log.warning("catalog cache version not bumped: %s", exc)
