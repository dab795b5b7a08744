"""The catalog's read cache, shared by every web process and the workers.

Entries live in the cache Redis (its own database, keys under ``folio:cache:``), written
through cachelib's ``RedisCache`` (Flask-Caching's backend on the web, the same class on
the workers), so each side reads what the other wrote.

- **Versioned keys.** Every entry is keyed ``books:v<version>:<digest of the read>``.
  A write increments the version after its commit (``bump``), so every entry written
  before becomes unreachable at once, in every process: no read can be older than a
  write it follows. The dead entries expire by themselves (``ttl``); after bulk changes
  a worker drops them at once (``drop_dead``).
- **Stampede protection.** On a miss one process takes a short lock and computes; the
  others wait up to ``lock_wait`` for its entry, then compute themselves (a lock holder
  that died costs them that wait, never a failure).
- **Hot reads.** Each cached read counts in a sorted set, so that ``warm`` recomputes the
  hottest reads after the version moved (beat and the ``cache.warm`` job).
- **Outages.** When the cache Redis cannot answer, reads go to the database (never a
  500); the first failure of an incident is logged, every one is counted.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, cast

import redis
from cachelib import BaseCache
from flask_caching.backends.rediscache import RedisCache

from shared.services.catalog_reads import BOOKS_LIST, POPULAR, CatalogRead

log = logging.getLogger(__name__)
T = TypeVar("T")
CACHE_PREFIX = "folio:cache:"
VERSION_KEY = "books:version"  # under CACHE_PREFIX, like every key below
HOT_KEY = "hot"
LOCK_PREFIX = "lock:"
SCOPES = ("books", "all")
MAX_HOT = 1000  # reads remembered as candidates for warming
TRIM_HOT_CHANCE = 0.01
LOCK_TTL_MS = 10_000
POLL_INTERVAL = 0.02
ALWAYS_WARM = (CatalogRead(BOOKS_LIST, "/api/books"), CatalogRead(POPULAR, "/api/books/popular"))
_ENTRY_VERSION = re.compile(rf"^{re.escape(CACHE_PREFIX)}books:v(\d+):")


def cache_client(url: str) -> redis.Redis:
    """A binary client (entries are pickled) that fails fast: 1 s, then the database."""
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def redis_backend(client: redis.Redis, ttl: int) -> RedisCache:
    """The backend Flask-Caching builds on the web, for a process without Flask-Caching."""
    return RedisCache(host=client, key_prefix=CACHE_PREFIX, default_timeout=ttl)


class CatalogCache:
    """Versioned, stampede-protected entries on ``backend``; ``None`` turns caching off."""

    def __init__(
        self, backend: BaseCache | None, client: redis.Redis, *, ttl: int, lock_wait: float = 1.0
    ) -> None:
        self.backend, self.client, self.ttl, self.lock_wait = backend, client, ttl, lock_wait
        self.failures = 0  # Redis errors seen (for metrics)
        self._down = False

    # -- reads ----------------------------------------------------------------------------

    def read(self, read: CatalogRead, compute: Callable[[], T], *, ttl: int | None = None) -> T:
        """``read``'s payload from the cache when this version has it, else computed."""
        return self._cached(read.digest, compute, ttl=ttl, hot=read.spec)

    def remember(self, name: str, compute: Callable[[], T], *, ttl: int | None = None) -> T:
        """A value derived from the catalog (a report), cached for this catalog version."""
        return self._cached(name, compute, ttl=ttl)

    def _cached(self, name: str, compute: Callable[[], T], *, ttl: int | None,
                hot: str | None = None) -> T:  # fmt: skip
        if self.backend is None:
            return compute()
        locked = False
        try:
            key = self._entry(self._version(count_hot=hot), name)
            hit = self.backend.get(key)
            if hit is None:
                locked = self._lock(key)
                # Once locked, look again: the last holder may have stored it just now.
                hit = self.backend.get(key) if locked else self._await(self.backend, key)
            self._worked()
        except redis.RedisError as exc:
            self._failed(exc)
            return compute()
        try:
            if hit is not None:
                return hit
            value = compute()
            self._store(key, value, ttl)
            return value
        finally:
            if locked:
                self._quietly(lambda: self.client.delete(CACHE_PREFIX + LOCK_PREFIX + key))

    def store(self, read: CatalogRead, payload: Any, *, version: int,
              ttl: int | None = None) -> str:  # fmt: skip
        """Store a payload computed at ``version`` (a worker warming); returns its key."""
        key = self._entry(version, read.digest)
        self._store(key, payload, ttl)
        return key

    def version(self) -> int:
        return self._version()

    def _version(self, *, count_hot: str | None = None) -> int:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.get(CACHE_PREFIX + VERSION_KEY)
            if count_hot is not None:
                pipe.zincrby(CACHE_PREFIX + HOT_KEY, 1, count_hot)
                if random.random() < TRIM_HOT_CHANCE:  # noqa: S311 - not a secret
                    # Bounded however many distinct queries clients send: the coldest go.
                    pipe.zremrangebyrank(CACHE_PREFIX + HOT_KEY, 0, -(MAX_HOT + 1))
            value = pipe.execute()[0]
        return int(value or 0)

    @staticmethod
    def _entry(version: int, name: str) -> str:
        return f"books:v{version}:{name}"

    def _lock(self, key: str) -> bool:
        """Only the holder computes; the lock expires by itself if the holder dies."""
        return bool(self.client.set(CACHE_PREFIX + LOCK_PREFIX + key, 1, nx=True, px=LOCK_TTL_MS))

    def _await(self, backend: BaseCache, key: str) -> Any:
        """Another process is computing ``key``: its entry, or ``None`` after the wait."""
        deadline = time.monotonic() + self.lock_wait
        while time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            hit = backend.get(key)
            if hit is not None:
                return hit
            if not self.client.exists(CACHE_PREFIX + LOCK_PREFIX + key):
                # Stored and released since the GET, or failed (a 404): look once more.
                return backend.get(key)
        return None

    def _store(self, key: str, value: Any, ttl: int | None) -> None:
        backend = self.backend
        if backend is None:
            return
        self._quietly(lambda: backend.set(key, value, timeout=ttl or self.ttl))

    # -- writes and housekeeping ----------------------------------------------------------

    def bump(self) -> None:
        """The catalog changed (committed): make every cached read of it unreachable."""
        if self.backend is not None:
            self._quietly(lambda: self.client.incr(CACHE_PREFIX + VERSION_KEY))

    def drop(self, scope: str) -> int:
        """Delete the entries of ``scope`` (``books``: catalog reads; ``all``: every key,
        the hot reads and locks too); how many entries there were.

        The version counter stays (and moves on): resetting it could make an entry that
        a process is storing right now reachable again later.
        """
        pattern = "books:*" if scope == "books" else "*"
        removed = self._unlink(self._scan(pattern))
        self.bump()
        return removed

    def drop_dead(self) -> int:
        """Delete the entries of versions before the current one (unreachable already)."""
        current = self.version()
        return self._unlink(
            key for key in self._scan("books:v*")
            if (match := _ENTRY_VERSION.match(key)) and int(match[1]) < current
        )  # fmt: skip

    def hottest(self, count: int) -> list[CatalogRead]:
        """The ``count`` most read reads."""
        specs = cast(list[bytes], self.client.zrevrange(CACHE_PREFIX + HOT_KEY, 0, count - 1))
        return [CatalogRead.from_spec(spec.decode()) for spec in specs]

    def warm(self, compute: Callable[[CatalogRead], Any], *, top: int) -> list[str]:
        """Compute and store the hottest reads (and the first catalog page, the popular
        list) for the current version; the labels of the reads warmed.

        A read that is no longer valid (a deleted book, a query that fails validation)
        is skipped: ``compute`` returns ``None`` for it.
        """
        if self.backend is None:
            return []
        version = self.version()
        reads = dict.fromkeys([*ALWAYS_WARM, *self.hottest(top)])
        warmed = []
        for read in reads:
            payload = compute(read)
            if payload is None:  # no longer a 200: no longer a candidate either
                self.client.zrem(CACHE_PREFIX + HOT_KEY, read.spec)
                continue
            self.store(read, payload, version=version)
            warmed.append(read.label)
        return warmed

    def _scan(self, pattern: str) -> Iterator[str]:
        version_key = CACHE_PREFIX + VERSION_KEY
        for raw in self.client.scan_iter(match=CACHE_PREFIX + pattern, count=1000):
            key = raw.decode()
            if key != version_key:
                yield key

    def _unlink(self, keys: Iterable[str], batch: int = 500) -> int:
        """Delete ``keys``; how many of them were entries (cached values, not locks or
        the hot-reads set)."""
        removed, pending = 0, []
        for key in itertools.chain(keys, [None]):  # None: the end, delete the rest
            if key is not None:
                pending.append(key)
            if pending and (key is None or len(pending) == batch):
                entries = [k for k in pending if _ENTRY_VERSION.match(k)]
                others = [k for k in pending if not _ENTRY_VERSION.match(k)]
                if others:
                    self.client.unlink(*others)
                if entries:
                    removed += int(self.client.unlink(*entries))
                pending = []
        return removed

    # -- outages --------------------------------------------------------------------------

    def _quietly(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except redis.RedisError as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if not self._down:
            log.warning("cache unavailable, reading from the database: %s", exc)
        self._down = True

    def _worked(self) -> None:
        if self._down:
            log.warning("cache available again")
        self._down = False
