"""``books.export``: the matching books as CSV or JSON Lines, streamed in batches.

Rows are read a batch at a time by keyset on ``id`` (Core rows: nothing accumulates in
the session) and each batch is handed to the worker as one chunk of the result file,
which the worker stores in the database at once. Memory stays bounded by one batch
whatever the catalog size, and any web process can serve the file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select

from shared.db import DbSession
from shared.models import Book, Job
from shared.services.books import BookFilters, filtered
from shared.services.jobs import Checkpoints

BATCH = 1000
COLUMNS = ("id", "title", "author", "isbn", "published_year", "genre", "price", "owner_id",
           "created_at", "updated_at")  # fmt: skip
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
_SELECTED = [getattr(Book, name) for name in COLUMNS]


def export_books(session: DbSession, job: Job, run: Checkpoints) -> dict[str, Any]:
    """Write the export file chunk by chunk; returns the job's result."""
    fmt = job.params["format"]
    filters = BookFilters(**job.params["filters"])
    total = session.scalar(filtered(session, select(func.count(Book.id)), filters)) or 0
    encode = _csv if fmt == "csv" else _jsonl
    rows = size = last_id = 0
    header = fmt == "csv"
    while True:
        query = filtered(session, select(*_SELECTED), filters).where(Book.id > last_id)
        batch = session.execute(query.order_by(Book.id).limit(BATCH)).all()
        data = encode(batch, header=header)
        header = False
        if data:
            run.store_chunk(data)
        rows, size = rows + len(batch), size + len(data)
        run.progress(rows, total, "exporting")
        if len(batch) < BATCH:
            break
        last_id = batch[-1].id
    return {"rows": rows, "bytes": size, "format": fmt, "url": f"/api/jobs/{job.id}/result"}


def _record(row: Row[Any]) -> dict[str, Any]:
    values = dict(zip(COLUMNS, row, strict=True))
    values["price"] = None if row.price is None else float(row.price)
    for name in ("created_at", "updated_at"):
        values[name] = values[name].strftime("%Y-%m-%dT%H:%M:%SZ")
    return values


def _csv(batch: Sequence[Row[Any]], *, header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    if header:
        writer.writeheader()
    writer.writerows(_record(row) for row in batch)
    return out.getvalue().encode()


def _jsonl(batch: Sequence[Row[Any]], *, header: bool) -> bytes:
    del header  # JSON Lines has none
    return "".join(json.dumps(_record(row), ensure_ascii=False) + "\n" for row in batch).encode()
