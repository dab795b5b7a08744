"""``books.report``: catalog statistics computed by the database in a few queries."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Integer, func, select, type_coerce

from shared.db import DbSession
from shared.models import Book, Job
from shared.services.jobs import Checkpoints

TOP_AUTHORS = 10
_CENTS = type_coerce(Book.price, Integer)  # aggregate cents, not the Money type
_STATS = (func.count(Book.id), func.avg(_CENTS), func.min(_CENTS), func.max(_CENTS))


def cache_name(params: dict[str, Any]) -> str:
    """The name a report's result is cached under (per catalog version) for ``params``."""
    canonical = json.dumps(params, sort_keys=True)
    return f"report:{hashlib.sha256(canonical.encode()).hexdigest()}"


def catalog_report(session: DbSession, job: Job, run: Checkpoints) -> dict[str, Any]:
    """Totals, count and price statistics per requested group, and the top authors."""
    group_by: list[str] = job.params["group_by"]
    steps = len(group_by) + 2
    total = session.execute(select(*_STATS)).one()
    run.progress(1, steps, "totals")
    groups = {}
    for done, name in enumerate(group_by, start=2):
        groups[name] = _grouped(session, name)
        run.progress(done, steps, f"grouped by {name}")
    top = session.execute(
        select(func.min(Book.author), func.count(Book.id))
        .group_by(Book.author_key)
        .order_by(func.count(Book.id).desc(), func.min(Book.author))
        .limit(TOP_AUTHORS)
    )  # fmt: skip
    return {
        "totals": _stats(total),
        "groups": groups,
        "top_authors": [{"author": author, "count": count} for author, count in top],
    }


def _grouped(session: DbSession, name: str) -> list[dict[str, Any]]:
    key: Any
    if name == "decade":
        key = Book.published_year // 10 * 10
    elif name == "author":
        key = Book.author_key
    else:
        key = Book.genre
    label = func.min(Book.author) if name == "author" else key
    rows = session.execute(select(label, *_STATS).group_by(key).order_by(key))
    return [{name: row[0], **_stats(row[1:])} for row in rows]


def _stats(row: Any) -> dict[str, Any]:
    count, average, low, high = row
    return {"count": count, "average_price": _money(average), "min_price": _money(low),
            "max_price": _money(high)}  # fmt: skip


def _money(cents: Any) -> float | None:
    return None if cents is None else round(float(cents) / 100, 2)
