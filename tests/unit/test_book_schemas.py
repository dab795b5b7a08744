"""Book schemas and fields, loaded as the JSON provider hands them over (floats as Decimal)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from marshmallow import Schema, ValidationError

from shared.schemas.book import (
    MAX_PAGE,
    book_create_schema,
    book_list_query_schema,
    book_patch_schema,
    book_schema,
    search_query_schema,
    search_words,
)


def valid(**overrides: Any) -> dict[str, Any]:
    data = {"title": "1984", "author": "George Orwell", "isbn": "978-0-451-52493-5",
            "published_year": 1949, "genre": "Fiction", "price": Decimal("9.99")}  # fmt: skip
    return data | overrides


def errors_of(data: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as info:
        book_create_schema.load(data, **kwargs)
    messages: dict[str, Any] = info.value.normalized_messages()
    return messages


def test_create_loads_normalized_values() -> None:
    loaded = book_create_schema.load(valid(title="  1984 ", author="\tGeorge Orwell\n"))
    assert loaded == valid(isbn="9780451524935")
    assert str(loaded["price"]) == "9.99"


def test_create_fills_omitted_optional_fields_with_none() -> None:
    loaded = book_create_schema.load({"title": "T", "author": "A"})
    assert loaded == {"title": "T", "author": "A", "isbn": None, "published_year": None,
                      "genre": None, "price": None}  # fmt: skip


def test_patch_loads_only_what_was_sent() -> None:
    assert book_patch_schema.load({"price": Decimal(5)}, partial=True) == {"price": Decimal("5.00")}
    assert book_patch_schema.load({}, partial=True) == {}
    with pytest.raises(ValidationError) as info:
        book_patch_schema.load({"title": None, "author": "  "}, partial=True)
    assert set(info.value.normalized_messages()) == {"title", "author"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", ""), ("title", "   "), ("title", "x" * 201), ("title", None), ("title", 1984),
        ("title", "a\x00b"), ("title", "bad\ud800surrogate"), ("author", "x" * 101),
        ("author", ["George"]), ("isbn", "9780451524936"), ("isbn", 9780451524935),
        ("isbn", ""), ("isbn", "9" * 41), ("published_year", 999), ("published_year", 2101),
        ("published_year", Decimal("1949.5")), ("published_year", True), ("published_year", "1949"),
        ("published_year", Decimal("1e999999999")), ("genre", "fiction"), ("genre", "Poetry"),
        ("genre", 1), ("price", Decimal("-0.01")), ("price", Decimal("9.999")), ("price", "9.99"),
        ("price", True), ("price", Decimal("1000000.01")), ("price", Decimal("1e30")),
        ("price", Decimal("1e999999999")), ("price", Decimal("1e-999999999")), ("price", [1]),
        ("price", float("nan")), ("price", float("inf")),
    ],
)  # fmt: skip
def test_invalid_values_name_their_field(field: str, value: Any) -> None:
    assert list(errors_of(valid(**{field: value}))) == [field]


@pytest.mark.parametrize(
    ("field", "value", "loaded"),
    [
        ("title", "x" * 200, "x" * 200), ("title", f"  {'x' * 200}  ", "x" * 200),
        ("author", "x" * 100, "x" * 100), ("author", "Émile Zola 🙂", "Émile Zola 🙂"),
        ("isbn", "0-439-42089-x", "043942089X"), ("isbn", None, None),
        ("published_year", 1000, 1000), ("published_year", 2100, 2100),
        ("published_year", Decimal("1949.0"), 1949), ("published_year", None, None),
        ("genre", "Non-Fiction", "Non-Fiction"), ("price", Decimal("9.990"), Decimal("9.99")),
        ("price", 0, Decimal("0.00")), ("price", Decimal("-0"), Decimal("0.00")),
        ("price", 12, Decimal("12.00")), ("price", Decimal("1000000"), Decimal("1000000.00")),
        ("price", 9.99, Decimal("9.99")), ("price", None, None),
    ],
)  # fmt: skip
def test_valid_edge_values(field: str, value: Any, loaded: Any) -> None:
    assert book_create_schema.load(valid(**{field: value}))[field] == loaded


def test_negative_zero_price_is_plain_zero() -> None:
    assert not book_create_schema.load(valid(price=Decimal("-0.00")))["price"].is_signed()


@pytest.mark.parametrize("field", ["id", "owner_id", "created_at", "updated_at", "links", "views"])
def test_read_only_and_unknown_fields_are_refused(field: str) -> None:
    assert list(errors_of(valid(**{field: 1}))) == [field]


@pytest.mark.parametrize("body", [None, [], [valid()], "text", 3])
def test_non_object_bodies_are_refused(body: Any) -> None:
    assert list(errors_of(body)) == ["_schema"]


def test_every_invalid_field_is_reported_at_once() -> None:
    bad = {"title": "", "isbn": "123", "price": Decimal("-1"), "extra": 1}
    assert set(errors_of(bad)) == {"title", "author", "isbn", "price", "extra"}


def test_book_dump_shape() -> None:
    created = dt.datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=dt.UTC)
    book = SimpleNamespace(id=7, title="1984", author="George Orwell", isbn="9780451524935",
                           published_year=1949, genre="Fiction", price=Decimal("9.99"),
                           owner_id=3, created_at=created, updated_at=created)  # fmt: skip
    assert book_schema.dump(book) == {
        "id": 7, "title": "1984", "author": "George Orwell", "isbn": "9780451524935",
        "published_year": 1949, "genre": "Fiction", "price": 9.99, "owner_id": 3,
        "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z",
        "links": {"self": "/api/books/7"},
    }  # fmt: skip


def test_list_query_clamps_sizes_and_refuses_mixed_modes() -> None:
    assert book_list_query_schema.load({"per_page": "500"}) == {"per_page": 100}
    assert book_list_query_schema.load({"per_page": "9" * 30}) == {"per_page": 100}
    assert book_list_query_schema.load({"limit": "101"}) == {"limit": 100}
    assert book_list_query_schema.load({"limit": "9" * 30}) == {"limit": 100}
    for mixed in ({"cursor": "x", "page": "1"}, {"limit": "5", "per_page": "5"}):
        with pytest.raises(ValidationError):
            book_list_query_schema.load(mixed)


@pytest.mark.parametrize(
    "query",
    [{"page": "0"}, {"per_page": "0"}, {"limit": "0"}, {"limit": "-1"}, {"page": "1.5"},
     {"sort": "author"}, {"sort": "--id"}, {"year_from": "999"}, {"genre": "fiction"},
     {"year_from": "2000", "year_to": "1999"}, {"q": "?!"}, {"q": "x" * 201}, {"author": " "},
     {"cursor": ""}],
)  # fmt: skip
def test_bad_list_queries(query: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        book_list_query_schema.load(query)


@pytest.mark.parametrize("schema", [book_list_query_schema, search_query_schema])
def test_pages_stop_at_max_page(schema: Schema) -> None:
    base = {"q": "orwell"}
    assert schema.load(base | {"page": str(MAX_PAGE)})["page"] == MAX_PAGE
    for page in (str(MAX_PAGE + 1), "9" * 30):
        with pytest.raises(ValidationError) as info:
            schema.load(base | {"page": page})
        assert list(info.value.messages_dict) == ["page"]


def test_search_query_defaults_and_rules() -> None:
    assert search_query_schema.load({"q": "orwell"}) == {"q": "orwell", "page": 1, "per_page": 20}
    assert search_query_schema.load({"q": "a", "per_page": "1000"})["per_page"] == 100
    for bad in (
        {},
        {"q": ""},
        {"q": "  "},
        {"q": "..."},
        {"q": "x" * 201},
        {"q": "a", "page": "0"},
    ):
        with pytest.raises(ValidationError):
            search_query_schema.load(bad)
    assert search_query_schema.load({"q": "x" * 200})["q"] == "x" * 200


def test_search_words_split_on_anything_but_letters_and_digits() -> None:
    assert search_words("George   ORWELL, 1984!") == ["George", "ORWELL", "1984"]
    assert search_words("o'reilly_media node.js") == ["o", "reilly", "media", "node", "js"]
    assert search_words("-- ?? __") == []
