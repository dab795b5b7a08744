"""The CSV import shorthand: a CSV body read into import rows (its shape only)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from marshmallow import ValidationError

from api.csv_import import rows_from_csv


def _body_error(data: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        rows_from_csv(data)
    messages = caught.value.messages
    assert isinstance(messages, dict)
    return str(messages["body"][0])


def test_rows_keep_text_and_turn_numbers_into_numbers() -> None:
    data = (
        b"title,author,isbn,published_year,genre,price\r\nDune,Frank Herbert,,1965,Fiction,9.99\r\n"
    )
    assert rows_from_csv(data) == [{"title": "Dune", "author": "Frank Herbert",
                                    "published_year": 1965, "genre": "Fiction",
                                    "price": Decimal("9.99")}]  # fmt: skip


def test_values_that_are_not_numbers_stay_text_for_the_worker_to_judge() -> None:
    rows = rows_from_csv(b"title,author,published_year,price\nA,B,nineteen,1e3\n")
    assert rows == [{"title": "A", "author": "B", "published_year": "nineteen", "price": "1e3"}]


def test_a_utf8_bom_quoted_cells_and_export_columns_are_accepted() -> None:
    data = '\ufeffid,title,author,owner_id,created_at\n7,"Émile, et al.",Zola,3,2026-01-01\n'
    assert rows_from_csv(data.encode()) == [{"title": "Émile, et al.", "author": "Zola"}]


def test_an_empty_body_is_refused() -> None:
    assert "empty" in _body_error(b"")


def test_unknown_columns_are_named() -> None:
    message = _body_error(b"title,author,colour\nA,B,red\n")
    assert "colour" in message


def test_title_and_author_columns_are_required() -> None:
    assert "author" in _body_error(b"title,isbn\nA,\n")


def test_a_column_named_twice_is_refused() -> None:
    assert "twice" in _body_error(b"title,author,title\nA,B,C\n")


def test_a_line_with_more_cells_than_columns_is_refused() -> None:
    assert "Line 3" in _body_error(b"title,author\nA,B\nC,D,E\n")


def test_bytes_that_are_not_utf8_are_refused() -> None:
    assert "UTF-8" in _body_error("title,author\nÀ,B\n".encode("latin-1"))


def test_a_cell_beyond_the_csv_field_limit_is_refused() -> None:
    assert "cannot be read" in _body_error(b'title,author\n"' + b"a" * 200_000 + b'",B\n')
