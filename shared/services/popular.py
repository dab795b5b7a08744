"""Popular books: views counted in Redis per read, added to the database by beat.

A read costs one ``HINCRBY`` on the main Redis (not the cache Redis: an evicting cache
must not lose counts), never a database write. ``flush_views`` moves the pending counts
to ``books.views``: it renames the hash first, so views counted meanwhile go to a new
one, and deletes the renamed hash only after the caller committed. A flush that died
before its commit leaves the hash behind, and the next flush adds it then.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from sqlalchemy import bindparam, select, update

from shared.db import DbSession
from shared.models import Book
from shared.schemas.book import book_schema

log = logging.getLogger(__name__)
PENDING = "folio:views:pending"  # book id -> views not yet in the database
FLUSHING = "folio:views:flushing"  # the counts a flush is adding
FLUSH_LOCK = "folio:views:flush-lock"  # one flush at a time
FLUSH_LOCK_TTL = 300  # seconds; far longer than a flush, short enough to recover
POPULAR_SIZE = 10


def record_view(store: redis.Redis, book_id: int) -> None:
    """Count one view; a Redis outage loses the view, never the read."""
    try:
        store.hincrby(PENDING, str(book_id), 1)
    except redis.RedisError as exc:
        log.debug("view of book %d not counted: %s", book_id, exc)


@contextmanager
def flush_lock(store: redis.Redis) -> Iterator[bool]:
    """Whether this flush may run: another one running would add the same counts again."""
    token = uuid.uuid4().hex
    acquired = bool(store.set(FLUSH_LOCK, token, nx=True, ex=FLUSH_LOCK_TTL))
    try:
        yield acquired
    finally:
        if acquired and store.get(FLUSH_LOCK) == token:
            store.delete(FLUSH_LOCK)


def take_pending(store: redis.Redis) -> dict[int, int]:
    """The counts to add: a dead flush's leftovers first, else the pending ones.

    Only under ``flush_lock``: the leftovers are those of a flush that is not running.
    """
    if not store.exists(FLUSHING):
        try:
            store.rename(PENDING, FLUSHING)
        except redis.ResponseError:  # no views since the last flush
            return {}
    return {int(book_id): int(n) for book_id, n in store.hgetall(FLUSHING).items()}


def add_views(session: DbSession, counts: dict[int, int]) -> None:
    """Add ``counts`` to ``books.views`` (books deleted meanwhile are skipped)."""
    if not counts:
        return
    table = Book.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("book_id"))
        # A view is not an edit: updated_at keeps its value (its onupdate would fire).
        .values(views=table.c.views + bindparam("n"), updated_at=table.c.updated_at)
    )
    rows = [{"book_id": book_id, "n": n} for book_id, n in sorted(counts.items())]
    session.execute(statement, rows)


def flushed(store: redis.Redis) -> None:
    """The taken counts are committed: forget them."""
    store.delete(FLUSHING)


def most_viewed(session: DbSession, limit: int = POPULAR_SIZE) -> list[dict[str, Any]]:
    """The most viewed books (viewed at least once), most viewed first, with ``views``."""
    query = select(Book).where(Book.views > 0).order_by(Book.views.desc(), Book.id).limit(limit)
    return [book_schema.dump(book) | {"views": book.views} for book in session.scalars(query)]
