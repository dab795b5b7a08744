"""The catalog's read cache, shared by every web process and the workers.

Entries live in the cache Redis (its own database, keys under ``folio:cache:``), written
through one cachelib backend class (``JsonRedisCache``: Flask-Caching's on the web, the
same class on the workers), so each side reads what the other wrote. Values are JSON,
never pickle: what is read back from Redis cannot run code.

- **Versioned keys.** Every entry is keyed ``books:v<version>:<name>``. A write
  increments the version after its commit (``bump``), so every entry written before
  becomes unreachable at once, in every process: no read can be older than a write it
  follows. The version starts from the clock when the key is missing (a restart, an
  eviction), so it never takes a value again whose entries may still be alive. The dead
  entries expire by themselves; after an import a worker drops them at once
  (``drop_dead``).
- **One round trip per hit.** A Lua script reads the version, counts the read as hot
  and fetches its entry. (It builds the entry's key itself: one Redis, not a Cluster.)
- **Stampede protection.** On a miss one process takes a lock and computes; the others
  wait while the lock exists (at most ``LOCK_TTL``), then take its entry, or compute
  themselves when it failed (a 404) or died.
- **Hot reads.** Each read counts in a sorted set (decayed and trimmed), so that
  ``warm`` (beat and the ``cache.warm`` job) recomputes the hottest reads.
- **Outages.** When the cache Redis cannot answer, reads go to the database (never a
  500); the first failure of an incident is logged, every one is counted; a version
  that could not be bumped is logged as an error each time (until its entries expire,
  a read may be older than that write).
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar, cast

import redis
from flask_caching.backends.rediscache import RedisCache

from shared.db import json_dumps, json_loads
from shared.metrics import CACHE_ERRORS, CACHE_READS, HIT, MISS
from shared.services.catalog_reads import BOOKS_LIST, POPULAR, CatalogRead

log = logging.getLogger(__name__)
T = TypeVar("T")
CACHE_PREFIX = "folio:cache:"
VERSION_KEY = "books:version"  # under CACHE_PREFIX, like every key below
HOT_KEY = "hot"
LOCK_PREFIX = "lock:"
MARK_PREFIX = "changed:"  # a change made elsewhere (an import job) that has been bumped for
MARK_TTL = 2 * 86400  # seconds; a mark gone early costs one more bump, nothing else
RENDERED = "r:"  # entries of reads hold a rendered response (not a report, not a total)
MAX_HOT = 1000  # reads remembered as candidates for warming
TRIM_HOT_CHANCE = 0.01
LOCK_TTL = 10.0  # seconds: a computation never takes longer, a dead holder blocks no more
POLL_INTERVAL = 0.02
POPULAR_READ = CatalogRead(POPULAR, "/api/books/popular")
ALWAYS_WARM = (CatalogRead(BOOKS_LIST, "/api/books"), POPULAR_READ)
_ENTRY = re.compile(rf"^{re.escape(CACHE_PREFIX)}books:v(\d+):")

# KEYS: version, hot set. ARGV: epoch, hot spec ("" for none), trim?, max hot, prefix, name.
_LOOKUP = """
local version = redis.call("GET", KEYS[1])
if not version then
    redis.call("SET", KEYS[1], ARGV[1], "NX")
    version = redis.call("GET", KEYS[1])
end
if ARGV[2] ~= "" then
    redis.call("ZINCRBY", KEYS[2], 1, ARGV[2])
    if ARGV[3] == "1" then
        redis.call("ZREMRANGEBYRANK", KEYS[2], 0, -(tonumber(ARGV[4]) + 1))
    end
end
return {version, redis.call("GET", ARGV[5] .. "books:v" .. version .. ":" .. ARGV[6])}
"""
# KEYS: version, then the marks of the changes it covers. ARGV: epoch, the marks' TTL.
_BUMP = """
redis.call("SET", KEYS[1], ARGV[1], "NX")
local version = redis.call("INCR", KEYS[1])
for i = 2, #KEYS do redis.call("SET", KEYS[i], version, "EX", ARGV[2]) end
return version
"""
# KEYS: lock. ARGV: token.
_RELEASE = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
"""


class JsonSerializer:
    """Cache values as JSON with exact decimals; anything unreadable is a miss.

    A rendered response (JSON text and its headers) is stored as ``R``, its headers as
    JSON, a newline, then the text as it is: a hit decodes only the headers.
    """

    def dumps(self, value: Any, protocol: int | None = None) -> bytes:
        if _is_rendered(value):
            text, headers = value
            return b"R" + json_dumps(headers).encode() + b"\n" + text.encode()
        return json_dumps(value).encode()

    def loads(self, value: bytes | None) -> Any:
        if value is None:
            return None
        try:
            if value.startswith(b"R"):
                headers, _, text = value[1:].partition(b"\n")
                return text.decode(), json_loads(headers)
            return json_loads(value)
        except ValueError:  # an entry of another format (an older release): recompute
            return None


def _is_rendered(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], dict))  # fmt: skip


class JsonRedisCache(RedisCache):
    """Flask-Caching's Redis backend with JSON values (``CACHE_TYPE`` on the web)."""

    serializer = JsonSerializer()  # type: ignore[assignment]


def cache_client(url: str) -> redis.Redis:
    """A binary client that fails fast: one second, then the database."""
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def _epoch() -> int:
    """Where a missing version restarts: beyond any version it may have had."""
    return int(time.time() * 1000)


class CatalogCache:
    """Versioned, stampede-protected entries on ``backend``; ``None`` turns caching off
    (versions still move, so that processes with caching on stay right)."""

    def __init__(
        self, backend: JsonRedisCache | None, client: redis.Redis, *, ttl: int,
        ttls: Mapping[str, int] | None = None, lock_wait: float = LOCK_TTL,
    ) -> None:  # fmt: skip
        self.backend, self.client, self.ttl, self.lock_wait = backend, client, ttl, lock_wait
        self.ttls = dict(ttls or {})  # per read kind (the popular list lives shorter)
        self.failures = 0  # Redis errors seen (for metrics)
        self._down = False
        self._lookup = client.register_script(_LOOKUP)
        self._bump = client.register_script(_BUMP)
        self._release = client.register_script(_RELEASE)

    # -- reads ----------------------------------------------------------------------------

    def read(self, read: CatalogRead, compute: Callable[[], T]) -> T:
        """``read``'s rendered response from the cache when this version has it, else
        computed (and stored). A read whose computation fails is no longer hot."""
        try:
            return self._cached(RENDERED + read.digest, compute, ttl=self.ttl_for(read),
                                read=read)  # fmt: skip
        except Exception:
            self._quietly(lambda: self.client.zrem(CACHE_PREFIX + HOT_KEY, read.spec))
            raise

    def remember(self, name: str, compute: Callable[[], T], *, ttl: int | None = None) -> T:
        """A value derived from the catalog (a total, a report), kept for this version."""
        return self._cached(name, compute, ttl=ttl or self.ttl)

    def ttl_for(self, read: CatalogRead) -> int:
        return self.ttls.get(read.kind, self.ttl)

    def _cached(self, name: str, compute: Callable[[], T], *, ttl: int,
                read: CatalogRead | None = None) -> T:  # fmt: skip
        """``name``'s entry, or computed and stored; a ``read`` counts as hot, and as a
        hit (from an entry, even one waited for) or a miss (computed here)."""
        if self.backend is None:
            return compute()
        lock = None
        try:
            version, hit = self._find(name, read.spec if read else None)
            key = self._entry(version, name)
            if hit is None:
                lock = self._lock(key)
                # Once locked, look again: the last holder may have stored it just now.
                hit = self.backend.get(key) if lock else self._await(key)
            self._worked()
        except redis.RedisError as exc:
            self._unlock(lock)
            self._failed(exc)
            _count(read, MISS)
            return compute()
        try:
            if hit is not None:
                _count(read, HIT)
                return cast(T, hit)
            _count(read, MISS)
            value = compute()
            self._store(key, value, ttl)
            return value
        finally:
            self._unlock(lock)

    def _find(self, name: str, hot: str | None) -> tuple[int, Any]:
        """The current version and this version's entry of ``name``: one round trip."""
        assert self.backend is not None  # noqa: S101 - only called with a backend
        trim = hot is not None and random.random() < TRIM_HOT_CHANCE  # noqa: S311
        args: list[str | int] = [_epoch(), hot or "", int(trim), MAX_HOT, CACHE_PREFIX, name]
        version, raw = self._lookup(keys=[CACHE_PREFIX + VERSION_KEY, CACHE_PREFIX + HOT_KEY],
                                    args=args)  # fmt: skip
        return int(version), self.backend.serializer.loads(raw)

    def store(self, read: CatalogRead, value: Any, *, version: int) -> bool:
        """Store a rendered read computed at ``version`` (a worker warming it)."""
        return self._store(self._entry(version, RENDERED + read.digest), value,
                           self.ttl_for(read))  # fmt: skip

    def version(self) -> int:
        """The current version (set from the clock when missing)."""
        self.client.set(CACHE_PREFIX + VERSION_KEY, _epoch(), nx=True)
        return int(self.client.get(CACHE_PREFIX + VERSION_KEY) or 0)

    @staticmethod
    def _entry(version: int, name: str) -> str:
        return f"books:v{version}:{name}"

    def _lock(self, key: str) -> str | None:
        """A token when this process may compute ``key`` (the lock expires by itself)."""
        token = uuid.uuid4().hex
        locked = self.client.set(CACHE_PREFIX + LOCK_PREFIX + key, token, nx=True,
                                 px=int(LOCK_TTL * 1000))  # fmt: skip
        return f"{key}\n{token}" if locked else None

    def _unlock(self, lock: str | None) -> None:
        """Release a lock this process holds (never another holder's, after an expiry)."""
        if lock is not None:
            key, token = lock.split("\n")
            self._quietly(lambda: self._release(keys=[CACHE_PREFIX + LOCK_PREFIX + key],
                                                args=[token]))  # fmt: skip

    def _await(self, key: str) -> Any:
        """Another process computes ``key``: its entry once its lock is gone, or ``None``
        (it failed or died: compute here)."""
        assert self.backend is not None  # noqa: S101 - only called with a backend
        deadline = time.monotonic() + self.lock_wait
        while time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            if not self.client.exists(CACHE_PREFIX + LOCK_PREFIX + key):
                break
        return self.backend.get(key)

    def _store(self, key: str, value: Any, ttl: int) -> bool:
        backend = self.backend
        return backend is not None and self._quietly(lambda: backend.set(key, value, timeout=ttl))

    # -- writes and housekeeping ----------------------------------------------------------

    def bump(self, *, changes: Iterable[str] = ()) -> None:
        """The catalog changed (committed): make every cached read of it unreachable.

        ``changes`` names changes made by this commit that others report as done (an
        import job's id): they are marked as covered by this bump (``settle``).
        """
        marks = [CACHE_PREFIX + MARK_PREFIX + change for change in changes]
        try:
            self._bump(keys=[CACHE_PREFIX + VERSION_KEY, *marks], args=[_epoch(), MARK_TTL])
        except redis.RedisError as exc:
            self.failures += 1
            CACHE_ERRORS.inc()
            log.error("catalog cache version NOT bumped; reads may be stale for up to "
                      "%d s: %s", max(self.ttl, *self.ttls.values()), exc)  # fmt: skip

    def settle(self, changes: list[str]) -> None:
        """Before reporting ``changes`` as done (a succeeded import), make sure a bump
        after their commit covers them: one that the worker made (and marked), or one
        made here when the worker died between its commit and its bump, or has not yet
        bumped. A client told "done" then never reads a page from before the change."""
        if not changes:
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for change in changes:
                    pipe.exists(CACHE_PREFIX + MARK_PREFIX + change)
                marked = pipe.execute()
        except redis.RedisError as exc:
            self._failed(exc)  # nothing cached can be read now either
            return
        missing = [change for change, found in zip(changes, marked, strict=True) if not found]
        if missing:
            self.bump(changes=missing)

    def drop(self, scope: str) -> int:
        """Delete the entries of ``scope`` (``books``: catalog reads, totals and reports;
        ``all``: every key but the version, the hot reads and locks too); the number of
        entries deleted. The version moves on rather than resetting: an entry that a
        process is storing right now must not become reachable later."""
        removed = self._unlink(self._scan("books:*" if scope == "books" else "*"))
        self.bump()
        return removed

    def drop_dead(self) -> int:
        """Delete the entries of versions before the current one (unreachable already)."""
        current = self.version()
        return self._unlink(
            key for key in self._scan("books:v*")
            if (match := _ENTRY.match(key)) and int(match[1]) < current
        )  # fmt: skip

    def hottest(self, count: int) -> list[CatalogRead]:
        """The ``count`` most read reads; every score halves, so old favourites fade."""
        hot = CACHE_PREFIX + HOT_KEY
        specs = cast(list[bytes], self.client.zrevrange(hot, 0, count - 1))
        self.client.zunionstore(hot, {hot: 0.5})
        return [CatalogRead.from_spec(spec.decode()) for spec in specs]

    def warm(self, compute: Callable[[CatalogRead], Any], *, top: int) -> list[str]:
        """Compute and store the first catalog page, the popular list and the hottest
        reads for the current version; the labels of the reads stored.

        ``compute`` returns ``None`` for a read that no longer answers 200 (a deleted
        book): it is skipped, and no longer a candidate.
        """
        if self.backend is None:
            return []
        version = self.version()
        warmed = []
        for read in dict.fromkeys([*ALWAYS_WARM, *self.hottest(top)]):
            value = compute(read)
            if value is None:
                self.client.zrem(CACHE_PREFIX + HOT_KEY, read.spec)
            elif self.store(read, value, version=version):
                warmed.append(read.label)
        return warmed

    def _scan(self, pattern: str) -> Iterator[str]:
        version_key = CACHE_PREFIX + VERSION_KEY
        for raw in self.client.scan_iter(match=CACHE_PREFIX + pattern, count=1000):
            key = raw.decode()
            if key != version_key:
                yield key

    def _unlink(self, keys: Iterable[str], batch: int = 500) -> int:
        """Delete ``keys``; how many of them were entries (not locks or the hot set)."""
        removed = 0
        keys = iter(keys)
        while chunk := list(itertools.islice(keys, batch)):
            entries = [key for key in chunk if _ENTRY.match(key)]
            others = set(chunk).difference(entries)
            if others:
                self.client.unlink(*others)
            if entries:
                removed += int(self.client.unlink(*entries))
        return removed

    # -- outages --------------------------------------------------------------------------

    def _quietly(self, action: Callable[[], Any]) -> bool:
        try:
            action()
        except redis.RedisError as exc:
            self._failed(exc)
            return False
        return True

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        CACHE_ERRORS.inc()
        if not self._down:
            log.warning("cache unavailable (reads go to the database): %s", exc)
        self._down = True

    def _worked(self) -> None:
        if self._down:
            log.warning("cache available again")
        self._down = False


def _count(read: CatalogRead | None, result: str) -> None:
    if read is not None:
        CACHE_READS.labels(read.kind, result).inc()
