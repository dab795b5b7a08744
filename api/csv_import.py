"""``POST /api/books/imports``: a CSV body read into the rows of a ``books.import`` job.

Only the shape is checked here (encoding, header, cells per row); each row is validated
with the book rules by the worker, as for JSON imports. Cells arrive as text: empty
cells are left out, and a year or price that looks like a number becomes one, so that
the book schema (which refuses ``"1949"`` from JSON) judges the value, not its quoting.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError

BOOK_COLUMNS = ("title", "author", "isbn", "published_year", "genre", "price")
# Columns of a Folio export that an import does not take: an export re-imports as it is.
EXPORT_ONLY_COLUMNS = ("id", "owner_id", "created_at", "updated_at")
_INTEGER = re.compile(r"-?[0-9]{1,9}")
_NUMBER = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,12})?")
_EXTRA = "\x00extra"  # DictReader's key for cells beyond the header (no column has it)


def rows_from_csv(body: bytes) -> list[dict[str, Any]]:
    """The data rows of a CSV whose header names book fields (``ValidationError``: 400)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _invalid(f"The CSV is not UTF-8 (byte {exc.start}).") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey=_EXTRA)
    try:
        columns = _check_header(reader.fieldnames)
        return [_row(record, columns, reader.line_num) for record in reader]
    except csv.Error as exc:
        raise _invalid(f"The CSV cannot be read (line {reader.line_num}): {exc}.") from None


def _check_header(fieldnames: Any) -> list[str]:
    if not fieldnames:
        raise _invalid("The CSV is empty: its first line must name the columns.")
    columns = [name.strip() for name in fieldnames]
    unknown = sorted(set(columns) - set(BOOK_COLUMNS) - set(EXPORT_ONLY_COLUMNS))
    if unknown:
        raise _invalid(
            f"Unknown column(s): {', '.join(unknown)}. Columns: {', '.join(BOOK_COLUMNS)}."
        )
    if len(set(columns)) != len(columns):
        raise _invalid("A column is named twice in the header.")
    missing = [name for name in ("title", "author") if name not in columns]
    if missing:
        raise _invalid(f"The header needs the column(s): {', '.join(missing)}.")
    return columns


def _row(record: dict[str, Any], columns: list[str], line: int) -> dict[str, Any]:
    if _EXTRA in record:
        raise _invalid(f"Line {line} has more cells than the header has columns.")
    row: dict[str, Any] = {}
    for name, raw in zip(columns, record.values(), strict=True):
        if name in EXPORT_ONLY_COLUMNS or raw is None or raw.strip() == "":
            continue
        value: Any = raw.strip()
        if name == "published_year" and _INTEGER.fullmatch(value):
            value = int(value)
        elif name == "price" and _NUMBER.fullmatch(value):
            value = Decimal(value)
        row[name] = value
    return row


def _invalid(message: str) -> ValidationError:
    return ValidationError({"body": [message]})
