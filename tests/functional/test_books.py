"""Books over HTTP: create, read (ETag), replace, patch, delete, and who may do what."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shared.db import db
from shared.models import Book, User
from shared.services import books
from tests.functional.conftest import assert_problem, book_payload
from tests.support.live import Api

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
BOOK_KEYS = {"id", "title", "author", "isbn", "published_year", "genre", "price", "owner_id",
             "created_at", "updated_at", "links"}  # fmt: skip
ANIMAL_FARM = {"title": "Animal Farm", "author": "George Orwell", "isbn": "9780451526342"}


def row(app: Flask, book_id: int) -> dict[str, Any] | None:
    """The book's row as stored, or None."""
    with app.app_context():
        book = db.session.get(Book, book_id)
        if book is None:
            return None
        return {c.name: getattr(book, c.name) for c in Book.__table__.columns}


def book_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Book.id))) or 0


def create(client: Api, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/books", json=book_payload(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# -- create -------------------------------------------------------------------------------


def test_create_answers_201_with_location_and_the_book(app: Flask, make_user: MakeUser) -> None:
    user, client = make_user()
    response = client.post("/api/books", json=book_payload())
    assert response.status_code == 201, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "private, no-cache"
    body = response.json()
    book_id = body["id"]
    assert response.headers["Location"] == f"/api/books/{book_id}"
    assert set(body) == BOOK_KEYS
    assert {k: v for k, v in body.items() if k not in {"id", "created_at", "updated_at"}} == {
        "title": "1984", "author": "George Orwell", "isbn": "9780451524935",
        "published_year": 1949, "genre": "Fiction", "price": 9.99, "owner_id": user["id"],
        "links": {"self": f"/api/books/{book_id}"},
    }  # fmt: skip
    assert isinstance(book_id, int)
    assert re.search(r'"price": ?9\.99[,}]', response.text)  # a JSON number, not "9.99"
    assert RFC3339_Z.match(body["created_at"])
    assert body["updated_at"] == body["created_at"]
    stored = row(app, book_id)
    assert stored is not None
    assert stored["price"] == Decimal("9.99")
    assert str(stored["price"]) == "9.99"
    assert stored["isbn"] == "9780451524935"
    assert stored["owner_id"] == user["id"]
    assert stored["created_at"].strftime("%Y-%m-%dT%H:%M:%SZ") == body["created_at"]
    assert client.get(response.headers["Location"]).json() == body


def test_create_with_only_required_fields_leaves_the_rest_null(app: Flask, user_api: Api) -> None:
    body = create(user_api, isbn=None, published_year=None, genre=None, price=None)
    minimal = user_api.post("/api/books", json={"title": "Untitled", "author": "Anon"}).json()
    for book in (body, minimal):
        assert (book["isbn"], book["published_year"], book["genre"], book["price"]) == (None,) * 4
    stored = row(app, minimal["id"])
    assert stored is not None
    assert (stored["isbn"], stored["published_year"], stored["genre"], stored["price"]) == (
        (None,) * 4
    )


@pytest.mark.parametrize(
    ("sent", "stored", "canonical"),
    [("978-0-451-52493-5", "9780451524935", "9780451524935"),
     ("978 0451 524935", "9780451524935", "9780451524935"),
     ("0-439-42089-x", "043942089X", "9780439420891"),
     ("0306406152", "0306406152", "9780306406157")],
)  # fmt: skip
def test_isbn_is_stored_without_separators_beside_its_isbn13(
    app: Flask, user_api: Api, sent: str, stored: str, canonical: str
) -> None:
    body = create(user_api, isbn=sent)
    assert body["isbn"] == stored
    assert "isbn13" not in body
    stored_row = row(app, body["id"])
    assert stored_row is not None
    assert (stored_row["isbn"], stored_row["isbn13"]) == (stored, canonical)


def test_title_and_author_are_stored_trimmed(app: Flask, user_api: Api) -> None:
    body = create(user_api, title="  Dune \n", author="\tFrank Herbert ")
    assert (body["title"], body["author"]) == ("Dune", "Frank Herbert")
    stored = row(app, body["id"])
    assert stored is not None
    assert (stored["title"], stored["author"]) == ("Dune", "Frank Herbert")


@pytest.mark.parametrize(("sent", "shown"), [(0, 0), (12, 12), (9.5, 9.5), (1000000, 1000000)])
def test_prices_come_back_as_the_same_number(user_api: Api, sent: float, shown: float) -> None:
    assert create(user_api, price=sent)["price"] == shown


def test_duplicate_isbn_on_create_is_409_and_adds_nothing(app: Flask, make_user: MakeUser) -> None:
    _, first = make_user()
    _, second = make_user()
    create(first)
    for client, isbn in ((first, "9780451524935"), (second, "978-0-451-52493-5")):
        response = client.post("/api/books", json=book_payload(title="Copy", isbn=isbn))
        body = assert_problem(response, 409, kind="conflict")
        assert "9780451524935" in body["detail"]
    assert book_count(app) == 1


# One book in both forms: (ISBN-13, its ISBN-10), hyphenated or not, X check or not.
SAME_BOOK = [
    ("9780451524935", "0451524934"), ("978-0-451-52493-5", "0-451-52493-4"),
    ("9780439420891", "043942089X"), ("978-0-439-42089-1", "0-439-42089-x"),
]  # fmt: skip


@pytest.mark.parametrize(("isbn13", "isbn10"), SAME_BOOK)
@pytest.mark.parametrize("isbn13_first", [True, False], ids=["13-then-10", "10-then-13"])
def test_an_isbn_in_its_other_form_is_409(
    app: Flask, user_api: Api, isbn13: str, isbn10: str, isbn13_first: bool
) -> None:
    first, second = (isbn13, isbn10) if isbn13_first else (isbn10, isbn13)
    create(user_api, isbn=first)
    response = user_api.post("/api/books", json=book_payload(title="Copy", isbn=second))
    body = assert_problem(response, 409, kind="conflict")
    canonical = isbn13.replace("-", "")
    assert body["detail"] == f"A book with ISBN {canonical} already exists."
    assert book_count(app) == 1


def concurrent_posts(clients: list[Api], isbns: list[str]) -> list[int]:
    """POST one book per (client, isbn) at once; the sorted status codes."""

    def post(args: tuple[Api, str]) -> int:
        client, isbn = args
        return client.post("/api/books", json=book_payload(isbn=isbn)).status_code

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        return sorted(pool.map(post, zip(clients, isbns, strict=True)))


def test_concurrent_creates_with_one_isbn_make_one_book(app: Flask, make_user: MakeUser) -> None:
    user, client = make_user()
    clients = [client.as_user(user["tokens"]["access_token"]) for _ in range(8)]
    statuses = concurrent_posts(clients, ["978-0-451-52493-5"] * len(clients))
    assert statuses == [201] + [409] * (len(clients) - 1)
    assert book_count(app) == 1


def test_concurrent_creates_of_both_forms_make_one_book(app: Flask, make_user: MakeUser) -> None:
    user, client = make_user()
    clients = [client.as_user(user["tokens"]["access_token"]) for _ in range(8)]
    for isbn13, isbn10 in SAME_BOOK[:3:2]:  # 1984, then Goblet of Fire (X check)
        statuses = concurrent_posts(clients, [isbn13, isbn10] * (len(clients) // 2))
        assert statuses == [201] + [409] * (len(clients) - 1)
    assert book_count(app) == 2
    with app.app_context():
        stored = db.session.scalars(select(Book.isbn13).order_by(Book.isbn13)).all()
    assert stored == ["9780439420891", "9780451524935"]


def test_a_race_lost_at_the_database_is_409_with_the_isbn13(
    app: Flask, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique constraint decides when a concurrent writer passed the check too."""
    _, client = make_user()
    create(client, isbn="0-451-52493-4")
    monkeypatch.setattr(books, "_ensure_isbn_free", lambda *_: None)  # both checks passed
    response = client.post("/api/books", json=book_payload(title="Copy"))
    body = assert_problem(response, 409, kind="conflict")
    assert body["detail"] == "A book with ISBN 9780451524935 already exists."
    assert book_count(app) == 1


def test_other_integrity_errors_are_raised_as_they_are(app: Flask, make_user: MakeUser) -> None:
    """Only a violation of the ISBN's unique constraint means "ISBN exists".

    Any other, even of another unique constraint, is raised as it is (a logged 500).
    """
    ghost = User(id=424242, email="ghost@example.com", username="ghost", password_hash="x")
    data = book_payload(price=Decimal("9.99"))
    with app.app_context():
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            books.create_book(db.session, owner=ghost, data=data)  # no such owner
        db.session.rollback()
    user, client = make_user()
    taken = create(client)["id"]
    with app.app_context():
        owner = db.session.get(User, user["id"])
        assert owner is not None
        with pytest.raises(IntegrityError, match=r"books_pkey|books\.id"):
            books.create_book(db.session, owner=owner, data=data | {"isbn": None, "id": taken})
        db.session.rollback()
    assert book_count(app) == 1


def test_books_without_isbn_do_not_conflict(app: Flask, user_api: Api) -> None:
    create(user_api, isbn=None)
    create(user_api, isbn=None)
    assert book_count(app) == 2


def test_create_needs_a_bearer_token(app: Flask, api: Api) -> None:
    response = api.post("/api/books", json=book_payload())
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bad = api.as_user("not-a-token").post("/api/books", json=book_payload())
    assert_problem(bad, 401)
    assert book_count(app) == 0


def test_create_refuses_non_json_and_malformed_json(app: Flask, user_api: Api) -> None:
    plain = user_api.post("/api/books", data="title=1984", headers={"Content-Type": "text/plain"})
    assert_problem(plain, 415)
    broken = user_api.post(
        "/api/books", data='{"title": "1984",', headers={"Content-Type": "application/json"}
    )
    assert_problem(broken, 400, kind="malformed-json")
    assert book_count(app) == 0


# -- read ---------------------------------------------------------------------------------


def test_get_one_is_public_with_etag_and_no_cache(user_api: Api, api: Api) -> None:
    book = create(user_api)
    response = api.get(f"/api/books/{book['id']}")
    assert response.status_code == 200
    assert response.json() == book
    assert response.headers["Cache-Control"] == "no-cache"
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag)  # strong
    again = api.get(f"/api/books/{book['id']}")
    assert again.headers["ETag"] == etag


def test_if_none_match_gives_304_until_the_book_changes(user_api: Api, api: Api) -> None:
    book = create(user_api)
    path = f"/api/books/{book['id']}"
    etag = api.get(path).headers["ETag"]
    cached = api.get(path, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["ETag"] == etag
    assert cached.headers["Cache-Control"] == "no-cache"
    assert api.get(path, headers={"If-None-Match": f'W/{etag}, "other"'}).status_code == 304
    assert api.get(path, headers={"If-None-Match": '"something-else"'}).status_code == 200
    assert user_api.patch(path, json={"price": 5}).status_code == 200
    fresh = api.get(path, headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.json()["price"] == 5
    assert fresh.headers["ETag"] != etag


@pytest.mark.parametrize(
    "book_id", ["1", "0", "999999", "2147483648", "9223372036854775808", "99999999999999999999999"]
)
def test_get_absent_book_is_404(api: Api, book_id: str) -> None:
    body = assert_problem(api.get(f"/api/books/{book_id}"), 404, kind="not-found")
    assert body["instance"] == f"/api/books/{book_id}"


@pytest.mark.parametrize("path", ["/api/books/abc", "/api/books/-1", "/api/books/1.5"])
def test_non_integer_ids_are_404_problems(api: Api, path: str) -> None:
    assert_problem(api.get(path), 404)


# -- replace and patch --------------------------------------------------------------------


def test_put_replaces_every_field_and_nulls_omitted_ones(app: Flask, make_user: MakeUser) -> None:
    owner, client = make_user()
    book = create(client)
    before = row(app, book["id"])
    response = client.put(
        f"/api/books/{book['id']}", json={"title": " Homage ", "author": "Orwell"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == book | {
        "title": "Homage", "author": "Orwell", "isbn": None, "published_year": None,
        "genre": None, "price": None, "updated_at": body["updated_at"],
    }  # fmt: skip
    stored = row(app, book["id"])
    assert stored is not None
    assert before is not None
    assert (stored["title"], stored["isbn"], stored["price"], stored["genre"]) == (
        "Homage", None, None, None,
    )  # fmt: skip
    assert stored["owner_id"] == owner["id"]
    assert stored["created_at"] == before["created_at"]
    assert stored["updated_at"] > before["updated_at"]


def test_put_can_set_every_field(app: Flask, user_api: Api) -> None:
    book = create(user_api)
    new = {"title": "Animal Farm", "author": "George Orwell", "isbn": "978-0-451-52634-2",
           "published_year": 1945, "genre": "Non-Fiction", "price": 7.5}  # fmt: skip
    body = user_api.put(f"/api/books/{book['id']}", json=new).json()
    assert {k: body[k] for k in new} == new | {"isbn": "9780451526342"}
    stored = row(app, book["id"])
    assert stored is not None
    assert stored["price"] == Decimal("7.50")
    assert stored["published_year"] == 1945


def test_put_needs_the_required_fields(app: Flask, user_api: Api) -> None:
    book = create(user_api)
    response = user_api.put(f"/api/books/{book['id']}", json={"price": 1})
    body = assert_problem(response, 400, kind="validation-error")
    assert set(body["errors"]) == {"title", "author"}
    assert row(app, book["id"])["price"] == Decimal("9.99")  # type: ignore[index]


def test_patch_changes_only_what_is_sent(app: Flask, user_api: Api) -> None:
    book = create(user_api)
    response = user_api.patch(f"/api/books/{book['id']}", json={"price": 12.5, "genre": "History"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == book | {"price": 12.5, "genre": "History", "updated_at": body["updated_at"]}
    stored = row(app, book["id"])
    assert stored is not None
    assert (stored["price"], stored["genre"], stored["title"], stored["isbn"]) == (
        Decimal("12.50"), "History", "1984", "9780451524935",
    )  # fmt: skip


def test_patch_with_null_clears_an_optional_field_but_not_a_required_one(
    app: Flask, user_api: Api
) -> None:
    book = create(user_api)
    path = f"/api/books/{book['id']}"
    assert user_api.patch(path, json={"isbn": None, "price": None}).json()["isbn"] is None
    stored = row(app, book["id"])
    assert stored is not None
    assert (stored["isbn"], stored["price"]) == (None, None)
    body = assert_problem(user_api.patch(path, json={"title": None}), 400, kind="validation-error")
    assert list(body["errors"]) == ["title"]
    assert row(app, book["id"])["title"] == "1984"  # type: ignore[index]


def test_empty_patch_changes_nothing(app: Flask, user_api: Api) -> None:
    book = create(user_api)
    response = user_api.patch(f"/api/books/{book['id']}", json={})
    assert response.status_code == 200
    assert response.json() == book


@pytest.mark.parametrize("method", ["put", "patch"])
def test_taking_another_books_isbn_is_409(app: Flask, user_api: Api, method: str) -> None:
    first = create(user_api)
    second = create(user_api, **ANIMAL_FARM)
    payload = book_payload(isbn="978-0-451-52493-5")
    response = getattr(user_api, method)(f"/api/books/{second['id']}", json=payload)
    assert_problem(response, 409, kind="conflict")
    assert row(app, second["id"])["isbn"] == "9780451526342"  # type: ignore[index]
    assert row(app, first["id"])["isbn"] == "9780451524935"  # type: ignore[index]


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(
    ("stored", "sent"), [("9780451524935", "0-451-52493-4"), ("0451524934", "978-0-451-52493-5")]
)
def test_taking_another_books_isbn_in_its_other_form_is_409(
    app: Flask, user_api: Api, method: str, stored: str, sent: str
) -> None:
    first = create(user_api, isbn=stored)
    second = create(user_api, **ANIMAL_FARM)
    response = getattr(user_api, method)(f"/api/books/{second['id']}", json=book_payload(isbn=sent))
    body = assert_problem(response, 409, kind="conflict")
    assert body["detail"] == "A book with ISBN 9780451524935 already exists."
    assert row(app, second["id"])["isbn"] == "9780451526342"  # type: ignore[index]
    assert row(app, first["id"])["isbn"] == stored  # type: ignore[index]


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_book_may_switch_to_the_other_form_of_its_own_isbn(
    app: Flask, user_api: Api, method: str
) -> None:
    book = create(user_api)
    path = f"/api/books/{book['id']}"
    response = getattr(user_api, method)(path, json=book_payload(isbn="0-451-52493-4"))
    assert response.status_code == 200, response.text
    assert response.json()["isbn"] == "0451524934"
    stored = row(app, book["id"])
    assert stored is not None
    assert (stored["isbn"], stored["isbn13"]) == ("0451524934", "9780451524935")
    back = getattr(user_api, method)(path, json=book_payload(isbn="9780451524935"))
    assert back.status_code == 200, back.text
    assert row(app, book["id"])["isbn"] == "9780451524935"  # type: ignore[index]


def test_clearing_the_isbn_clears_its_isbn13(app: Flask, user_api: Api) -> None:
    book = create(user_api, isbn="0-451-52493-4")
    assert user_api.patch(f"/api/books/{book['id']}", json={"isbn": None}).status_code == 200
    stored = row(app, book["id"])
    assert stored is not None
    assert (stored["isbn"], stored["isbn13"]) == (None, None)
    create(user_api, title="Another", isbn="9780451524935")  # free in either form


@pytest.mark.parametrize("method", ["put", "patch"])
def test_keeping_the_own_isbn_is_no_conflict(user_api: Api, method: str) -> None:
    book = create(user_api)
    payload = book_payload(title="1984 (reissue)", isbn="978-0451524935")
    response = getattr(user_api, method)(f"/api/books/{book['id']}", json=payload)
    assert response.status_code == 200, response.text
    assert response.json()["isbn"] == "9780451524935"


def test_an_isbn_freed_by_a_change_can_be_reused(app: Flask, user_api: Api) -> None:
    book = create(user_api)
    assert user_api.patch(f"/api/books/{book['id']}", json={"isbn": None}).status_code == 200
    create(user_api, title="Another")
    assert book_count(app) == 2


# -- delete -------------------------------------------------------------------------------


def test_delete_answers_204_and_the_book_is_gone(app: Flask, user_api: Api, api: Api) -> None:
    book = create(user_api)
    path = f"/api/books/{book['id']}"
    response = user_api.delete(path)
    assert response.status_code == 204
    assert response.content == b""
    assert "Content-Type" not in response.headers
    assert row(app, book["id"]) is None
    assert_problem(api.get(path), 404)
    assert_problem(user_api.delete(path), 404)
    assert_problem(user_api.patch(path, json={"price": 1}), 404)
    create(user_api)  # the ISBN is free again


# -- who may write ------------------------------------------------------------------------


def test_other_users_get_403_and_change_nothing(app: Flask, make_user: MakeUser) -> None:
    _, owner = make_user()
    _, other = make_user()
    book = create(owner)
    path = f"/api/books/{book['id']}"
    before = row(app, book["id"])
    assert_problem(other.put(path, json=book_payload(title="Mine")), 403, kind="forbidden")
    assert_problem(other.patch(path, json={"title": "Mine"}), 403, kind="forbidden")
    assert_problem(other.delete(path), 403, kind="forbidden")
    # permission comes before validation: a stranger learns nothing from the body rules
    assert_problem(other.patch(path, json={"title": ""}), 403, kind="forbidden")
    assert_problem(other.put(path, json={"nonsense": 1}), 403, kind="forbidden")
    assert row(app, book["id"]) == before


def test_anonymous_writes_are_401(app: Flask, user_api: Api, api: Api) -> None:
    book = create(user_api)
    path = f"/api/books/{book['id']}"
    for response in (
        api.put(path, json=book_payload(title="X")),
        api.patch(path, json={"title": "X"}),
        api.delete(path),
    ):
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert row(app, book["id"])["title"] == "1984"  # type: ignore[index]


def test_writes_to_an_absent_book_are_404_even_with_a_bad_body(user_api: Api) -> None:
    assert_problem(user_api.put("/api/books/424242", json={"title": ""}), 404)
    assert_problem(user_api.patch("/api/books/424242", json={"price": "x"}), 404)
    assert_problem(user_api.delete("/api/books/424242"), 404)


def test_admin_may_change_and_delete_any_book(
    app: Flask, make_user: MakeUser, admin_api: Api
) -> None:
    owner, client = make_user()
    book = create(client)
    path = f"/api/books/{book['id']}"
    patched = admin_api.patch(path, json={"price": 1.25})
    assert patched.status_code == 200, patched.text
    assert patched.json()["owner_id"] == owner["id"]
    replaced = admin_api.put(path, json={"title": "Nineteen Eighty-Four", "author": "Orwell"})
    assert replaced.status_code == 200
    assert replaced.json()["owner_id"] == owner["id"]
    assert row(app, book["id"])["title"] == "Nineteen Eighty-Four"  # type: ignore[index]
    assert admin_api.delete(path).status_code == 204
    assert row(app, book["id"]) is None


def test_role_is_read_on_each_request(app: Flask, make_user: MakeUser) -> None:
    _, owner = make_user()
    promoted, client = make_user()
    book = create(owner)
    path = f"/api/books/{book['id']}"
    assert client.patch(path, json={"price": 1}).status_code == 403
    with app.app_context():
        from shared.models import User  # noqa: PLC0415 - only this test needs it

        user = db.session.get(User, promoted["id"])
        assert user is not None
        user.role = "admin"
        db.session.commit()
    assert client.patch(path, json={"price": 1}).status_code == 200
