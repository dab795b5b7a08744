"""Popular books: views counted in Redis per read, added to the database by beat.

A read costs one ``HINCRBY`` on the main Redis (not the cache Redis: an evicting cache
must not lose counts), never a database write. A flush takes the pending counts as a
*batch*: the hash is renamed (views counted meanwhile go to a new one) and given a
batch id. The views are added in a transaction that also records the batch id
(``view_flushes``), so a batch is counted once: a flush that died after its commit
leaves the batch in Redis, and the next flush finds it recorded and only forgets it;
two flushes that took the same batch cannot both commit it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import bindparam, delete, select, update

from shared.db import DbSession, utcnow
from shared.models import Book, ViewFlush
from shared.schemas.book import book_schema

PENDING = "folio:views:pending"  # book id -> views not yet in the database
FLUSHING = "folio:views:flushing"  # the batch being added
FLUSHING_BATCH = "folio:views:flushing-batch"  # its id
POPULAR_SIZE = 10
KEEP_FLUSHES = dt.timedelta(days=1)  # a batch id is remembered this long

# KEYS: pending, flushing, batch id. ARGV: a new batch id. -> {batch id, counts} or nil
_TAKE = """
if redis.call("EXISTS", KEYS[2]) == 0 then
    if redis.call("EXISTS", KEYS[1]) == 0 then return nil end
    redis.call("RENAME", KEYS[1], KEYS[2])
end
redis.call("SET", KEYS[3], ARGV[1], "NX")
return {redis.call("GET", KEYS[3]), redis.call("HGETALL", KEYS[2])}
"""
# KEYS: flushing, batch id. ARGV: the batch id that was added.
_FORGET = """
if redis.call("GET", KEYS[2]) == ARGV[1] then return redis.call("DEL", KEYS[1], KEYS[2]) end
return 0
"""


@dataclass(frozen=True)
class Batch:
    batch_id: str
    counts: dict[int, int]  # book id -> views


def record_view(store: redis.Redis, book_id: int) -> bool:
    """Count one view; a Redis outage loses the view (False), never the read."""
    try:
        store.hincrby(PENDING, str(book_id), 1)
    except redis.RedisError:
        return False
    return True


def take_pending(store: redis.Redis) -> Batch | None:
    """The batch to add: a dead flush's leftovers first, else the pending views."""
    taken = store.register_script(_TAKE)(keys=[PENDING, FLUSHING, FLUSHING_BATCH],
                                         args=[uuid.uuid4().hex])  # fmt: skip
    if taken is None:
        return None
    batch_id, flat = taken
    pairs = zip(flat[::2], flat[1::2], strict=True)
    return Batch(str(batch_id), {int(book_id): int(n) for book_id, n in pairs})


def add_views(session: DbSession, batch: Batch) -> None:
    """Add the batch's views to ``books.views``, recording the batch.

    ``IntegrityError`` (at once, or at the commit) when the batch was added before: the
    caller rolls back, and forgets the batch either way. Books deleted meanwhile are
    skipped. ``updated_at`` keeps its value: a view is not an edit.
    """
    session.add(ViewFlush(batch_id=batch.batch_id))
    session.flush()
    table = Book.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("book_id"))
        .values(views=table.c.views + bindparam("n"), updated_at=table.c.updated_at)
    )
    rows = [{"book_id": book_id, "n": n} for book_id, n in sorted(batch.counts.items())]
    if rows:
        session.execute(statement, rows)
    session.execute(delete(ViewFlush).where(ViewFlush.flushed_at < utcnow() - KEEP_FLUSHES))


def forget(store: redis.Redis, batch: Batch) -> None:
    """The batch is in the database: remove it from Redis (unless another took over)."""
    store.register_script(_FORGET)(keys=[FLUSHING, FLUSHING_BATCH], args=[batch.batch_id])


def most_viewed(session: DbSession, limit: int = POPULAR_SIZE) -> list[dict[str, Any]]:
    """The most viewed books (viewed at least once), most viewed first, with ``views``."""
    query = select(Book).where(Book.views > 0).order_by(Book.views.desc(), Book.id).limit(limit)
    return [book_schema.dump(book) | {"views": book.views} for book in session.scalars(query)]
