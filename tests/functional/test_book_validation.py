"""Every rule of API.md section 3, over HTTP: a 400 problem naming each field, and no write."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from shared.db import db
from shared.models import Book
from tests.functional.conftest import assert_problem, book_payload
from tests.support.live import Api

MISSING = object()

# (field, value, a message the error must contain); MISSING drops the field.
INVALID: list[tuple[str, Any, str]] = [
    ("title", MISSING, "Missing data for required field."),
    ("title", None, "Field may not be null."),
    ("title", "", "Length must be between 1 and 200."),
    ("title", "   \t ", "Length must be between 1 and 200."),
    ("title", "x" * 201, "Length must be between 1 and 200."),
    ("title", f" {'x' * 201} ", "Length must be between 1 and 200."),
    ("title", 1984, "Not a valid string."),
    ("title", ["1984"], "Not a valid string."),
    ("title", "Nine\x07teen", "Must not contain control characters."),
    ("author", MISSING, "Missing data for required field."),
    ("author", None, "Field may not be null."),
    ("author", "", "Length must be between 1 and 100."),
    ("author", "y" * 101, "Length must be between 1 and 100."),
    ("author", {"name": "Orwell"}, "Not a valid string."),
    ("isbn", "9780451524936", "Not a valid ISBN-10 or ISBN-13."),
    ("isbn", "978-0-451-52493-6", "Not a valid ISBN-10 or ISBN-13."),
    ("isbn", "0306406153", "Not a valid ISBN-10 or ISBN-13."),
    ("isbn", "X306406152", "Not a valid ISBN-10 or ISBN-13."),
    ("isbn", "978045152493", "Not a valid ISBN-10 or ISBN-13."),
    ("isbn", "97804515249350", "Not a valid ISBN-10 or ISBN-13."),
    ("isbn", "978/0451524935", "Not a valid ISBN-10 or ISBN-13."),
    ("isbn", "", "Not a valid ISBN-10 or ISBN-13."),
    ("isbn", 9780451524935, "Not a valid string."),
    ("published_year", 999, "greater than or equal to 1000"),
    ("published_year", 2101, "less than or equal to 2100"),
    ("published_year", -1949, "greater than or equal to 1000"),
    ("published_year", 4.5, "Not a valid integer."),
    ("published_year", 1949.5, "Not a valid integer."),
    ("published_year", True, "Not a valid integer."),
    ("published_year", "1949", "Not a valid integer."),
    ("published_year", [1949], "Not a valid integer."),
    ("genre", "fiction", "Must be one of: Fiction, Non-Fiction, Science, History."),
    ("genre", "Poetry", "Must be one of"),
    ("genre", "", "Must be one of"),
    ("genre", 1, "Not a valid string."),
    ("price", -0.01, "Must be greater than or equal to 0."),
    ("price", -5, "Must be greater than or equal to 0."),
    ("price", 9.999, "Must have at most 2 decimal places."),
    ("price", 0.001, "Must have at most 2 decimal places."),
    ("price", 1000000.01, "Must be less than or equal to 1000000."),
    ("price", 1e30, "Number too large."),
    ("price", "9.99", "Not a valid number."),
    ("price", True, "Not a valid number."),
    ("price", {"amount": 9.99}, "Not a valid number."),
    ("id", 7, "Unknown field."),
    ("owner_id", 1, "Unknown field."),
    ("created_at", "2026-11-25T10:00:00Z", "Unknown field."),
    ("updated_at", "2026-11-25T10:00:00Z", "Unknown field."),
    ("links", {"self": "/api/books/7"}, "Unknown field."),
    ("views", 3, "Unknown field."),
    ("Title", "1984", "Unknown field."),
]

# Valid values at the edges: (field, sent, shown in the response).
VALID: list[tuple[str, Any, Any]] = [
    ("title", "x" * 200, "x" * 200), ("title", "A", "A"), ("title", "Ἰλιάς 🙂", "Ἰλιάς 🙂"),
    ("author", "y" * 100, "y" * 100), ("isbn", "043942089X", "043942089X"),
    ("isbn", "979-0-0000000-0-1", "9790000000001"), ("isbn", None, None),
    ("published_year", 1000, 1000), ("published_year", 2100, 2100),
    ("published_year", 1949.0, 1949), ("published_year", None, None),
    ("genre", "Fiction", "Fiction"), ("genre", "Non-Fiction", "Non-Fiction"),
    ("genre", "Science", "Science"), ("genre", "History", "History"), ("genre", None, None),
    ("price", 9.990, 9.99), ("price", 0, 0), ("price", 0.1, 0.1), ("price", 1000000, 1000000),
    ("price", 1e2, 100), ("price", None, None),
]  # fmt: skip


def book_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Book.id))) or 0


def with_value(field: str, value: Any) -> dict[str, Any]:
    payload = book_payload()
    if value is MISSING:
        payload.pop(field)
    else:
        payload[field] = value
    return payload


def errors_of(response: Any) -> dict[str, list[str]]:
    body = assert_problem(response, 400, kind="validation-error")
    assert body["title"] == "Validation Error"
    errors: dict[str, list[str]] = body["errors"]
    return errors


@pytest.mark.parametrize(
    "fields", [("title",), ("author",), ("isbn",), ("published_year",), ("genre",), ("price",),
               ("id", "owner_id", "created_at", "updated_at", "links", "views", "Title")],
    ids=lambda fields: fields[0],
)  # fmt: skip
def test_invalid_field_is_400_on_create_replace_and_patch(
    app: Flask, user_api: Api, fields: tuple[str, ...]
) -> None:
    """One test per field walks all its cases, to keep the suite fast on two databases."""
    created = user_api.post("/api/books", json=book_payload())
    path = created.headers["Location"]
    wrong = []
    for field, value, message in (case for case in INVALID if case[0] in fields):
        attempts = [("post", "/api/books", with_value(field, value)),
                    ("put", path, with_value(field, value))]  # fmt: skip
        if value is not MISSING:  # a patch may leave out anything
            attempts.append(("patch", path, {field: value}))
        for method, target, payload in attempts:
            errors = errors_of(getattr(user_api, method)(target, json=payload))
            if list(errors) != [field] or not any(message in m for m in errors[field]):
                wrong.append((method, field, value, errors))
    assert wrong == []
    assert book_count(app) == 1
    assert user_api.get(path).json() == created.json()


def test_create_accepts_valid_edge_values(app: Flask, user_api: Api) -> None:
    wrong = []
    for field, sent, shown in VALID:
        payload = book_payload(isbn=None) | {field: sent}
        response = user_api.post("/api/books", json=payload)
        if response.status_code != 201 or response.json()[field] != shown:
            wrong.append((field, sent, response.status_code, response.text))
    assert wrong == []
    assert book_count(app) == len(VALID)


def test_patch_accepts_valid_edge_values(user_api: Api) -> None:
    path = user_api.post("/api/books", json=book_payload(isbn=None)).headers["Location"]
    for field, sent, shown in VALID:
        response = user_api.patch(path, json={field: sent})
        assert response.status_code == 200, (field, sent, response.text)
        assert response.json()[field] == shown


def test_every_invalid_field_is_named_in_one_response(app: Flask, user_api: Api) -> None:
    payload = {"title": "", "isbn": "123", "published_year": 4.5, "genre": "Poetry",
               "price": -1, "id": 3}  # fmt: skip
    body = assert_problem(user_api.post("/api/books", json=payload), 400, kind="validation-error")
    assert set(body["errors"]) == {"title", "author", "isbn", "published_year", "genre", "price",
                                   "id"}  # fmt: skip
    assert body["errors"]["isbn"] == ["Not a valid ISBN-10 or ISBN-13."]
    assert body["errors"]["price"] == ["Must be greater than or equal to 0."]
    assert body["errors"]["author"] == ["Missing data for required field."]
    assert "7 invalid fields" in body["detail"]
    assert book_count(app) == 0


@pytest.mark.parametrize("body", [[], [book_payload()], "1984", 1984, None, True])
def test_a_body_that_is_not_an_object_is_refused(app: Flask, user_api: Api, body: Any) -> None:
    headers = {"Content-Type": "application/json"}
    response = user_api.post("/api/books", data=json.dumps(body), headers=headers)
    problem = assert_problem(response, 400, kind="validation-error")
    assert problem["errors"]
    assert book_count(app) == 0


@pytest.mark.parametrize(
    "raw",
    [
        '{"title": "a", "author": "b", "price": NaN}',
        '{"title": "a", "author": "b", "price": Infinity}',
        '{"title": "a", "author": "b", "price": -Infinity}',
        '{"title": "a\\u0000b", "author": "b"}',
        '{"title": "a", "author": "b", "published_year": 1e999999999}',
        "",
    ],
)
def test_bodies_no_database_could_store_are_400(app: Flask, user_api: Api, raw: str) -> None:
    headers = {"Content-Type": "application/json"}
    response = user_api.post("/api/books", data=raw.encode(), headers=headers)
    assert_problem(response, 400)
    assert book_count(app) == 0


def post_raw(client: Api, payload: dict[str, Any], **literals: str) -> Any:
    """POST ``payload`` with some values replaced by JSON number literals, verbatim."""
    text = json.dumps(payload | {field: f"<{field}>" for field in literals})
    for field, literal in literals.items():
        text = text.replace(f'"<{field}>"', literal)
    return client.post("/api/books", data=text, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("field", ["price", "published_year"])
def test_huge_numbers_are_validation_errors(app: Flask, user_api: Api, field: str) -> None:
    errors = errors_of(post_raw(user_api, book_payload(), **{field: "1e300"}))
    assert errors == {field: ["Number too large."]}
    assert book_count(app) == 0


def test_price_stays_exact_through_the_database(app: Flask, user_api: Api) -> None:
    wrong = []
    cases = [("0.1", "0.10"), ("0.29", "0.29"), ("1.005e2", "100.50"), ("33.33", "33.33"),
             ("999999.99", "999999.99"), ("7", "7.00")]  # fmt: skip
    for literal, exact in cases:
        response = post_raw(user_api, book_payload(isbn=None), price=literal)
        assert response.status_code == 201, (literal, response.text)
        assert response.json()["price"] == float(exact)
        with app.app_context():
            stored = db.session.get(Book, response.json()["id"])
            assert stored is not None
            if str(stored.price) != exact:
                wrong.append((literal, stored.price))
    assert wrong == []
