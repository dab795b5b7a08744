"""Listing books: filters, sorts, page mode (envelope, links, Link header) and keyset cursors."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from sqlalchemy import event, select

from shared.cursor import INVALID_CURSOR, CursorCodec
from shared.db import db
from shared.models import Book
from shared.schemas.book import MAX_PAGE, SORT_CHOICES
from shared.services.seed import seed_books
from tests.functional.conftest import assert_problem, book_payload
from tests.support.live import Api

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)

# Rows for the filter tests: (title, author, published_year, genre).
SHELF = [
    ("The Hobbit", "J. R. R. Tolkien", 1937, "Fiction"),
    ("The Lord of the Rings", "J. R. R. Tolkien", 1954, "Fiction"),
    ("Hobbies for Everyone", "Ann Other", 2000, "Non-Fiction"),
    ("Nineteen Eighty-Four", "George Orwell", 1949, "Fiction"),
    ("Animal Farm", "George Orwell", 1945, "Fiction"),
    ("Georgette", "Anne Smith", None, "History"),
    ("Germinal", "Émile Zola", 1885, "Fiction"),
    ("A Brief History of Time", "Stephen Hawking", 1988, "Science"),
]


def add_books(app: Flask, *rows: dict[str, Any], owner_id: int | None = None) -> list[int]:
    """Insert books as given (no HTTP); returns their ids in order."""
    with app.app_context():
        books = [Book(**({"title": "T", "author": "A"} | r), owner_id=owner_id) for r in rows]
        db.session.add_all(books)
        db.session.commit()
        return [book.id for book in books]


def seed(app: Flask, count: int, *, owner_id: int | None = None) -> None:
    with app.app_context():
        assert seed_books(db.session(), count, owner_id=owner_id) == count
        db.session.commit()


def shelve(app: Flask) -> dict[str, int]:
    """The SHELF books; returns title -> id."""
    rows = [{"title": t, "author": a, "published_year": y, "genre": g} for t, a, y, g in SHELF]
    return dict(zip([t for t, *_ in SHELF], add_books(app, *rows), strict=True))


def titles(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["title"] for item in response.json()["items"]}


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def query_of(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query, keep_blank_values=True)


def link_header(response: Any) -> dict[str, str]:
    """rel -> target of an RFC 8288 ``Link`` header."""
    found = re.findall(r'<([^>]*)>\s*;\s*rel="([^"]+)"', response.headers.get("Link", ""))
    return {rel: target for target, rel in found}


def walk_pages(api: Api, path: str) -> Iterator[dict[str, Any]]:
    """Every page body, following ``links.next``."""
    while path:
        response = api.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        yield body
        path = body["links"]["next"]


def walk_cursor(api: Api, path: str) -> Iterator[dict[str, Any]]:
    """Every cursor-mode body, following ``next_cursor`` with nothing but the cursor."""
    response = api.get(path)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        yield body
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return
        limit = query_of(path).get("limit", ["20"])[0]
        response = api.get("/api/books", params={"cursor": body["next_cursor"], "limit": limit})


def expected_order(app: Flask, sort: str) -> list[int]:
    """Ids in the documented order: by the value (NULLs last either way), then by id."""
    name, descending = sort.lstrip("-"), sort.startswith("-")
    with app.app_context():
        rows = [(getattr(b, name), b.id) for b in db.session.scalars(select(Book))]
    present = sorted((r for r in rows if r[0] is not None), reverse=descending)
    nulls = sorted((r for r in rows if r[0] is None), key=lambda r: r[1], reverse=descending)
    return [book_id for _, book_id in present + nulls]


# -- page mode ----------------------------------------------------------------------------


def test_default_listing_is_page_one_of_twenty_by_id(app: Flask, api: Api) -> None:
    seed(app, 45)
    response = api.get("/api/books")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["ETag"]
    body = response.json()
    assert set(body) == {"items", "pagination", "links"}
    assert body["pagination"] == {
        "page": 1, "per_page": 20, "total_pages": 3, "total_items": 45, "has_next": True,
        "has_prev": False, "next_page": 2, "prev_page": None,
    }  # fmt: skip
    assert [item["id"] for item in body["items"]] == expected_order(app, "id")[:20]
    assert set(body["links"]) == {"self", "first", "last", "next", "prev"}
    assert body["links"]["prev"] is None
    for rel, page in (("self", "1"), ("first", "1"), ("last", "3"), ("next", "2")):
        assert urlsplit(body["links"][rel]).path == "/api/books"
        assert query_of(body["links"][rel]) == {"page": [page], "per_page": ["20"]}
    assert link_header(response) == {
        "next": body["links"]["next"], "first": body["links"]["first"],
        "last": body["links"]["last"],
    }  # fmt: skip
    item = body["items"][0]
    assert set(item) == set(book_payload()) | {"id", "owner_id", "created_at", "updated_at",
                                               "links"}  # fmt: skip


def test_middle_and_last_pages(app: Flask, api: Api) -> None:
    seed(app, 45)
    middle = api.get("/api/books?page=2")
    assert middle.json()["pagination"] == {
        "page": 2, "per_page": 20, "total_pages": 3, "total_items": 45, "has_next": True,
        "has_prev": True, "next_page": 3, "prev_page": 1,
    }  # fmt: skip
    assert set(link_header(middle)) == {"next", "prev", "first", "last"}
    assert query_of(link_header(middle)["prev"])["page"] == ["1"]
    last = api.get("/api/books?page=3").json()
    assert len(last["items"]) == 5
    assert (last["pagination"]["has_next"], last["pagination"]["next_page"]) == (False, None)
    assert last["links"]["next"] is None


def test_links_keep_every_other_query_parameter(app: Flask, api: Api) -> None:
    seed(app, 30)
    response = api.get(
        "/api/books?sort=-price&genre=Fiction&per_page=2&page=2&q=the&year_from=1850"
    )
    body = response.json()
    others = {"sort": ["-price"], "genre": ["Fiction"], "q": ["the"], "year_from": ["1850"],
              "per_page": ["2"]}  # fmt: skip
    for rel in ("self", "first", "last", "next", "prev"):
        assert {k: v for k, v in query_of(body["links"][rel]).items() if k != "page"} == others
    for rel, target in link_header(response).items():
        assert target == body["links"][rel]
    following = api.get(body["links"]["next"]).json()
    assert following["pagination"]["page"] == 3
    assert all(item["genre"] == "Fiction" for item in following["items"])


def test_following_next_links_visits_every_book_once(app: Flask, api: Api) -> None:
    seed(app, 47)
    seen = [
        item["id"] for body in walk_pages(api, "/api/books?per_page=10") for item in body["items"]
    ]
    assert seen == expected_order(app, "id")


def test_per_page_above_100_is_clamped(app: Flask, api: Api) -> None:
    seed(app, 120)
    body = api.get("/api/books?per_page=1000").json()
    assert len(body["items"]) == 100
    assert body["pagination"]["per_page"] == 100
    assert body["pagination"]["total_pages"] == 2
    assert query_of(body["links"]["next"])["per_page"] == ["100"]


def test_a_page_past_the_end_is_empty(app: Flask, api: Api) -> None:
    seed(app, 45)
    for page in ("4", "1000", str(MAX_PAGE)):
        response = api.get(f"/api/books?page={page}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["items"] == []
        assert body["pagination"]["total_items"] == 45
        assert (body["pagination"]["has_next"], body["pagination"]["has_prev"]) == (False, True)
        assert body["pagination"]["prev_page"] == int(page) - 1


def test_a_page_above_max_page_is_400(app: Flask, api: Api) -> None:
    seed(app, 3)
    for page in (str(MAX_PAGE + 1), "99999999999999999999999999"):
        response = api.get("/api/books", params={"page": page, "genre": "Fiction"})
        body = assert_problem(response, 400, kind="validation-error")
        assert body["errors"] == {
            "page": [f"Must be greater than or equal to 1 and less than or equal to {MAX_PAGE}."]
        }


def test_a_huge_per_page_is_clamped_like_any_above_100(app: Flask, api: Api) -> None:
    seed(app, 3)
    body = api.get("/api/books?per_page=99999999999999999999999999").json()
    assert body["pagination"]["per_page"] == 100
    assert len(body["items"]) == 3


def test_empty_catalog(api: Api) -> None:
    body = api.get("/api/books").json()
    assert body["items"] == []
    assert body["pagination"] == {
        "page": 1, "per_page": 20, "total_pages": 0, "total_items": 0, "has_next": False,
        "has_prev": False, "next_page": None, "prev_page": None,
    }  # fmt: skip
    assert query_of(body["links"]["last"])["page"] == ["1"]


BAD_LIST_PARAMETERS = [
    ("page=0", "page"), ("page=-1", "page"), ("page=abc", "page"), ("page=1.5", "page"),
     ("per_page=0", "per_page"), ("per_page=-5", "per_page"), ("per_page=x", "per_page"),
     ("sort=author", "sort"), ("sort=-author", "sort"), ("sort=id,title", "sort"),
     ("sort=", "sort"), ("sort=--id", "sort"), ("sort=ID", "sort"), ("genre=fiction", "genre"),
     ("year_from=999", "year_from"), ("year_to=2101", "year_to"), ("year_from=19x", "year_from"),
     ("year_from=2000&year_to=1999", "year_from"), ("q=", "q"), ("q=%3F%21", "q"),
     (f"q={'x' * 201}", "q"), ("author=", "author"), ("author=a%00b", "author"),
    ("q=dune%00", "q"),
]  # fmt: skip


def test_bad_list_parameters_are_400(api: Api) -> None:
    for query, field in BAD_LIST_PARAMETERS:
        body = assert_problem(api.get(f"/api/books?{query}"), 400, kind="validation-error")
        assert list(body["errors"]) == [field], query
        if field == "sort":
            assert "price" in body["errors"]["sort"][0]  # the message lists the choices


def test_list_supports_if_none_match(app: Flask, api: Api, user_api: Api) -> None:
    seed(app, 3)
    etag = api.get("/api/books").headers["ETag"]
    assert api.get("/api/books", headers={"If-None-Match": etag}).status_code == 304
    user_api.post("/api/books", json=book_payload())
    fresh = api.get("/api/books", headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert fresh.json()["pagination"]["total_items"] == 4


def test_listing_reflects_writes_at_once(api: Api, user_api: Api) -> None:
    assert api.get("/api/books").json()["pagination"]["total_items"] == 0
    path = user_api.post("/api/books", json=book_payload()).headers["Location"]
    assert ids(api.get("/api/books")) == [int(path.rsplit("/", 1)[1])]
    user_api.patch(path, json={"genre": "History"})
    assert titles(api.get("/api/books?genre=History")) == {"1984"}
    assert titles(api.get("/api/books?genre=Fiction")) == set()
    user_api.delete(path)
    assert api.get("/api/books").json()["pagination"]["total_items"] == 0


# -- filters ------------------------------------------------------------------------------


def test_genre_filter_is_exact(app: Flask, api: Api) -> None:
    shelve(app)
    assert titles(api.get("/api/books?genre=Non-Fiction")) == {"Hobbies for Everyone"}
    assert titles(api.get("/api/books?genre=Science")) == {"A Brief History of Time"}
    fiction = api.get("/api/books?genre=Fiction")
    assert len(titles(fiction)) == 5
    assert fiction.json()["pagination"]["total_items"] == 5


AUTHORS = [
    ("George Orwell", {"Nineteen Eighty-Four", "Animal Farm"}),
     ("george orwell", {"Nineteen Eighty-Four", "Animal Farm"}),
     ("GEORGE ORWELL", {"Nineteen Eighty-Four", "Animal Farm"}),
     ("  George Orwell ", {"Nineteen Eighty-Four", "Animal Farm"}),
     ("George", set()), ("Orwell", set()), ("George Orwel", set()), ("%", set()),
     ("George%", set()), ("Émile Zola", {"Germinal"}), ("ÉMILE ZOLA", {"Germinal"}),
]  # fmt: skip


def test_author_filter_is_case_insensitive_and_exact(app: Flask, api: Api) -> None:
    shelve(app)
    wrong = {}
    for author, expected in AUTHORS:
        found = titles(api.get("/api/books", params={"author": author}))
        if found != expected:
            wrong[author] = found
    assert wrong == {}


def test_author_filter_folds_case_beyond_ascii(app: Flask, api: Api, user_api: Api) -> None:
    """NFKC + case folding on both sides: accents, ``ß`` = ``ss``, composed = decomposed."""
    shelve(app)
    add_books(app, {"title": "Schlaflos", "author": "Groß"})
    found = {
        author: titles(api.get("/api/books", params={"author": author}))
        for author in ("émile zola", "ÉMILE ZOLA", "E\u0301mile Zola", "GROSS", "gross", "groß",
                       "GROẞ", "Gros", "emile zola")
    }  # fmt: skip
    assert found == {
        "émile zola": {"Germinal"}, "ÉMILE ZOLA": {"Germinal"}, "E\u0301mile Zola": {"Germinal"},
        "GROSS": {"Schlaflos"}, "gross": {"Schlaflos"}, "groß": {"Schlaflos"},
        "GROẞ": {"Schlaflos"}, "Gros": set(), "emile zola": set(),
    }  # fmt: skip
    # Written over HTTP, and changed: the stored key follows the author.
    path = user_api.post("/api/books", json=book_payload(author="Rainer Groß")).headers["Location"]
    assert titles(api.get("/api/books", params={"author": "RAINER GROSS"})) == {"1984"}
    assert user_api.patch(path, json={"author": "Émile Zola"}).status_code == 200
    assert titles(api.get("/api/books", params={"author": "RAINER GROSS"})) == set()
    assert titles(api.get("/api/books", params={"author": "émile zola"})) == {"1984", "Germinal"}
    cursor_mode = api.get("/api/books", params={"author": "GROSS", "limit": 5})
    assert titles(cursor_mode) == {"Schlaflos"}


def test_year_range_is_inclusive_and_skips_unknown_years(app: Flask, api: Api) -> None:
    shelve(app)
    assert titles(api.get("/api/books?year_from=1945&year_to=1949")) == {
        "Animal Farm", "Nineteen Eighty-Four"}  # fmt: skip
    assert titles(api.get("/api/books?year_from=1988")) == {
        "A Brief History of Time", "Hobbies for Everyone"}  # fmt: skip
    assert titles(api.get("/api/books?year_to=1937")) == {"The Hobbit", "Germinal"}
    assert titles(api.get("/api/books?year_from=1954&year_to=1954")) == {"The Lord of the Rings"}


QUERIES = [
    ("hobbit", {"The Hobbit"}), ("HOBBIT", {"The Hobbit"}), ("Hobbit!", {"The Hobbit"}),
     ("hob", {"The Hobbit", "Hobbies for Everyone"}), ("obbit", set()), ("hobbits", set()),
     ("tolkien", {"The Hobbit", "The Lord of the Rings"}), ("tolkien hobbit", {"The Hobbit"}),
     ("hobbit orwell", set()), ("george", {"Nineteen Eighty-Four", "Animal Farm", "Georgette"}),
     ("orwell farm", {"Animal Farm"}), ("eighty-four", {"Nineteen Eighty-Four"}),
     ("eighty four", {"Nineteen Eighty-Four"}), ("four", {"Nineteen Eighty-Four"}),
     ("the lord", {"The Lord of the Rings"}), ("Émile", {"Germinal"}), ("ÉMILE", {"Germinal"}),
     ("zol germ", {"Germinal"}), ("  time   brief ", {"A Brief History of Time"}),
     ("history", {"A Brief History of Time"}), ('hobbit* "the"', {"The Hobbit"}),
     ("the OR hobbit", set()), ("NOT hobbit", set()), ("NEAR(the hobbit)", set()),
     ("hobbit:* | tolkien", {"The Hobbit"}), ("o'the", {"The Lord of the Rings"}),
]  # fmt: skip


def test_q_needs_every_word_as_a_word_or_prefix(app: Flask, api: Api) -> None:
    """Every word must match, case-insensitively beyond ASCII too (see QUERIES).

    FTS5's unicode61 folds case, and so does PostgreSQL in a UTF-8 locale (the test
    cluster's is C.UTF-8; in a plain C locale ``ÉMILE`` would not find ``Émile``).
    """
    shelve(app)
    wrong = {}
    for q, expected in QUERIES:
        response = api.get("/api/books", params={"q": q})
        found = titles(response)
        if found != expected or response.json()["pagination"]["total_items"] != len(expected):
            wrong[q] = found
    assert wrong == {}


def test_filters_combine(app: Flask, api: Api) -> None:
    shelve(app)
    query = "genre=Fiction&year_from=1940&q=the&sort=-published_year"
    assert [i["title"] for i in api.get(f"/api/books?{query}").json()["items"]] == [
        "The Lord of the Rings"]  # fmt: skip
    query = "author=george%20orwell&year_to=1946&genre=Fiction"
    assert titles(api.get(f"/api/books?{query}")) == {"Animal Farm"}


def test_unknown_query_parameters_are_ignored_but_kept_in_links(app: Flask, api: Api) -> None:
    seed(app, 3)
    body = api.get("/api/books?utm_source=mail&per_page=1").json()
    assert len(body["items"]) == 1
    assert query_of(body["links"]["next"])["utm_source"] == ["mail"]


# -- sorting, both modes ------------------------------------------------------------------


def mixed_catalog(app: Flask) -> None:
    """Seeded books plus NULL prices and years, ties on every column, odd title cases."""
    seed(app, 25)
    rows: list[dict[str, Any]] = [
        {"title": "zebra", "price": None, "published_year": None, "created_at": T0},
        {"title": "Zebra", "price": Decimal("9.99"), "published_year": 1999, "created_at": T0},
        {"title": "aardvark", "price": Decimal("9.99"), "published_year": None},
        {"title": "Aardvark", "price": None, "published_year": 1999},
        {"title": "Beyond the River", "price": Decimal("0.00"), "published_year": 1850},
        {"title": "Beyond the River", "price": Decimal("0.00"), "published_year": 2025},
        {"title": "Mid", "price": None, "published_year": None,
         "created_at": T0 + dt.timedelta(days=1)},
        {"title": "Mid", "price": Decimal("69.99"), "published_year": 1000},
        {"title": "Late", "price": None, "published_year": 2100,
         "created_at": dt.datetime(2999, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)},
    ]  # fmt: skip
    add_books(app, *rows)
    seed(app, 6)


def test_every_sort_gives_one_order_in_page_and_cursor_mode(app: Flask, api: Api) -> None:
    mixed_catalog(app)
    wrong = {}
    for sort in SORT_CHOICES:
        expected = expected_order(app, sort)
        one_page = ids(api.get(f"/api/books?sort={sort}&per_page=100"))
        paged = [i["id"] for b in walk_pages(api, f"/api/books?sort={sort}&per_page=7")
                 for i in b["items"]]  # fmt: skip
        cursor = [i["id"] for b in walk_cursor(api, f"/api/books?sort={sort}&limit=7")
                  for i in b["items"]]  # fmt: skip
        if not one_page == paged == cursor == expected:
            wrong[sort] = {"expected": expected, "page": one_page, "pages": paged, "cursor": cursor}
    assert wrong == {}


def test_nulls_come_last_in_both_directions(app: Flask, api: Api) -> None:
    mixed_catalog(app)
    for sort in ("price", "-price", "published_year", "-published_year"):
        items = api.get(f"/api/books?sort={sort}&per_page=100").json()["items"]
        values = [item[sort.lstrip("-")] for item in items]
        first_null = values.index(None)
        assert all(v is None for v in values[first_null:]), sort
        assert None not in values[:first_null]


def test_sorted_filtered_cursor_walk_matches_page_mode(app: Flask, api: Api) -> None:
    mixed_catalog(app)
    query = "genre=Fiction&year_from=1900&q=the&sort=-price"
    paged = [i["id"] for b in walk_pages(api, f"/api/books?{query}&per_page=3") for i in b["items"]]
    cursor = [i["id"] for b in walk_cursor(api, f"/api/books?{query}&limit=3") for i in b["items"]]
    assert paged == cursor
    assert len(paged) == api.get(f"/api/books?{query}").json()["pagination"]["total_items"]


# -- cursor mode --------------------------------------------------------------------------


def test_cursor_mode_shape_and_defaults(app: Flask, api: Api) -> None:
    seed(app, 45)
    response = api.get("/api/books?limit=5")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    body = response.json()
    assert set(body) == {"items", "has_more", "next_cursor"}
    assert ids(response) == expected_order(app, "id")[:5]
    assert body["has_more"] is True
    assert isinstance(body["next_cursor"], str)
    next_link = link_header(response)["next"]
    assert query_of(next_link) == {"limit": ["5"], "cursor": [body["next_cursor"]]}
    assert ids(api.get(next_link)) == expected_order(app, "id")[5:10]
    default = api.get("/api/books", params={"cursor": body["next_cursor"]})
    assert ids(default) == expected_order(app, "id")[5:25]  # limit defaults to 20


def test_next_link_carries_only_cursor_and_limit(app: Flask, api: Api) -> None:
    """The cursor holds the filters and sort: the link need not repeat them."""
    shelve(app)
    matching = [{"title": f"The Tale {n % 4}", "genre": "Fiction", "published_year": 1950 + n}
                for n in range(7)]  # fmt: skip
    add_books(app, *matching, {"title": "The Tale", "genre": "History", "published_year": 1950})
    query = {"genre": "Fiction", "year_from": "1900", "q": "the", "sort": "-title"}
    response = api.get("/api/books", params=query | {"limit": 2, "utm_source": "mail"})
    body = response.json()
    link = link_header(response)["next"]
    assert urlsplit(link).path == "/api/books"
    assert query_of(link) == {"cursor": [body["next_cursor"]], "limit": ["2"]}
    expected = ids(api.get("/api/books", params=query | {"per_page": 100}))
    walked = ids(response)
    while link:
        response = api.get(link)
        walked += ids(response)
        link = link_header(response).get("next", "")
    assert walked == expected
    assert len(expected) == 9  # the seven, The Hobbit, The Lord of the Rings


def long_text(size: int, *, seed: int) -> str:
    """Words of CJK Extension B ideographs, at most ``size`` characters, none repeated.

    Each one is 4 bytes of UTF-8 (12 characters percent-encoded) and a surrogate pair
    when JSON-escaped: the longest filters a client can send, little helped by zlib.
    """
    text = ""
    for n in range(size):
        word = "".join(chr(0x20000 + (n * 7919 + k * 104729 + seed * 31) % 40000)
                       for k in range(4 + n % 3))  # fmt: skip
        if len(text) + len(word) + 1 > size:
            return text
        text = f"{text} {word}" if text else word
    return text


def test_next_link_with_the_longest_non_ascii_filters_fits_a_request_line(
    app: Flask, api: Api
) -> None:
    """The link stays within 4094 bytes of request line, gunicorn's default limit."""
    q, author = long_text(200, seed=1), long_text(100, seed=2)
    assert (len(q), len(author)) >= (195, 95)
    add_books(app, *[{"title": q, "author": author}] * 3)
    response = api.get("/api/books", params={"q": q, "author": author, "limit": 1})
    assert len(ids(response)) == 1
    link = link_header(response)["next"]
    assert len(f"GET {link} HTTP/1.1".encode()) <= 4094
    assert len(ids(api.get(link))) == 1


def test_cursor_mode_without_cursor_defaults_to_twenty(app: Flask, api: Api) -> None:
    seed(app, 25)
    first = api.get("/api/books?limit=20").json()
    assert len(first["items"]) == 20


def test_limit_above_100_is_clamped(app: Flask, api: Api) -> None:
    seed(app, 120)
    body = api.get("/api/books?limit=500").json()
    assert len(body["items"]) == 100
    assert body["has_more"] is True
    rest = api.get("/api/books", params={"cursor": body["next_cursor"], "limit": 500}).json()
    assert len(rest["items"]) == 20
    assert (rest["has_more"], rest["next_cursor"]) == (False, None)


def test_bad_limit_is_400(api: Api) -> None:
    for limit in ("0", "-1", "abc", "2.5", ""):
        body = assert_problem(api.get(f"/api/books?limit={limit}"), 400, kind="validation-error")
        assert list(body["errors"]) == ["limit"], limit


def test_last_page_has_no_cursor_even_when_it_is_full(app: Flask, api: Api) -> None:
    seed(app, 10)
    first = api.get("/api/books?limit=5").json()
    assert first["has_more"] is True
    last_response = api.get("/api/books", params={"cursor": first["next_cursor"], "limit": 5})
    last = last_response.json()
    assert len(last["items"]) == 5
    assert (last["has_more"], last["next_cursor"]) == (False, None)
    assert "next" not in link_header(last_response)
    empty = api.get("/api/books?limit=5&genre=Science&year_from=2100").json()
    assert empty == {"items": [], "has_more": False, "next_cursor": None}


def test_cursor_with_filters_omitted_or_repeated(app: Flask, api: Api) -> None:
    shelve(app)
    seed(app, 30)
    base = {"genre": "Fiction", "year_from": "1900", "sort": "title"}
    first = api.get("/api/books", params=base | {"limit": 3}).json()
    cursor = first["next_cursor"]
    expected = ids(api.get("/api/books", params=base | {"per_page": 6}))[3:6]
    variants = [
        {}, base, {"genre": "Fiction"}, {"sort": "title"}, {"year_from": "1900", "sort": "title"}
    ]  # fmt: skip
    for repeated in variants:
        response = api.get("/api/books", params=repeated | {"cursor": cursor, "limit": 3})
        assert ids(response) == expected, repeated


def test_cursor_with_other_filters_or_sort_is_400(app: Flask, api: Api) -> None:
    seed(app, 30)
    base = {"genre": "Fiction", "year_from": "1900", "sort": "title"}
    cursor = api.get("/api/books", params=base | {"limit": 2}).json()["next_cursor"]
    changes = [{"genre": "History"}, {"year_from": "1901"}, {"sort": "-title"}, {"sort": "id"},
               {"author": "George Orwell"}, {"q": "the"}, {"year_to": "2000"}]  # fmt: skip
    for changed in changes:
        response = api.get("/api/books", params=base | changed | {"cursor": cursor})
        body = assert_problem(response, 400, kind="validation-error")
        assert list(body["errors"]) == ["cursor"], changed


def test_cursor_made_without_filters_refuses_new_ones(app: Flask, api: Api) -> None:
    seed(app, 10)
    cursor = api.get("/api/books?limit=2").json()["next_cursor"]
    assert ids(api.get("/api/books", params={"cursor": cursor, "sort": "id"}))
    assert_problem(api.get("/api/books", params={"cursor": cursor, "genre": "Fiction"}), 400)
    assert_problem(api.get("/api/books", params={"cursor": cursor, "sort": "-id"}), 400)


def tampered_cursors(cursor: str) -> list[str]:
    payload, signature = cursor.rsplit(".", 1)
    middle = len(payload) // 2
    flipped = payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1 :]
    forged = {"s": "id", "f": {}, "k": [0, 0]}
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    other_key = CursorCodec("someone-elses-secret-0123456789", salt="folio.books.cursor")
    return [
        f"{flipped}.{signature}",
        f"{payload}.{signature[:-3]}{'AAA' if signature[-3:] != 'AAA' else 'BBB'}",
        f"{forged_payload}.{signature}",
        forged_payload,
        other_key.encode(sort="id", filters={}, key=[0, 0]),
        payload,
        "not-a-cursor",
        "x" * 8001,
    ]


def well_signed_nonsense(app: Flask) -> list[str]:
    """Cursors signed with the server's own key whose content no listing could have made."""
    codec: CursorCodec = app.extensions["folio"].cursors
    return [
        codec.encode(sort="price", filters={}, key=["abc", 1]),
        codec.encode(sort="price", filters={}, key=["1e999999", 1]),
        codec.encode(sort="author", filters={}, key=["A", 1]),
        codec.encode(sort="id", filters={}, key=[1, "1"]),
        codec.encode(sort="id", filters={}, key=[None, 1]),
        codec.encode(sort="price", filters={}, key=["9.999", 1]),
        codec.encode(sort="price", filters={}, key=[9.99, 1]),
        codec.encode(sort="published_year", filters={}, key=[10**30, 1]),
        codec.encode(sort="id", filters={}, key=[1, 10**30]),
        codec.encode(sort="title", filters={}, key=[7, 1]),
        codec.encode(sort="created_at", filters={}, key=["yesterday", 1]),
        codec.encode(sort="created_at", filters={}, key=["2026-01-01T00:00:00", 1]),
        codec.encode(sort="id", filters={"isbn": "9780451524935"}, key=[1, 1]),
    ]


def test_tampered_cursors_are_400(app: Flask, api: Api) -> None:
    seed(app, 10)
    cursor = api.get("/api/books?limit=3").json()["next_cursor"]
    for bad in tampered_cursors(cursor) + well_signed_nonsense(app):
        response = api.get("/api/books", params={"cursor": bad})
        body = assert_problem(response, 400, kind="validation-error")
        too_long = "Length must be between 1 and 8000."
        assert body["errors"] == {"cursor": [too_long if len(bad) > 8000 else INVALID_CURSOR]}, bad
    assert len(ids(api.get("/api/books", params={"cursor": cursor}))) == 7


def test_mixing_page_and_cursor_modes_is_400(app: Flask, api: Api) -> None:
    seed(app, 10)
    cursor = api.get("/api/books?limit=3").json()["next_cursor"]
    for extra in ({"page": "1"}, {"per_page": "5"}, {"page": "2", "per_page": "5"}):
        assert_problem(api.get("/api/books", params={"cursor": cursor} | extra), 400)
        assert_problem(api.get("/api/books", params={"limit": "3"} | extra), 400)


def test_cursor_pages_do_not_shift_when_the_catalog_changes(
    app: Flask, api: Api, user_api: Api, admin_api: Api
) -> None:
    seed(app, 12)
    first = api.get("/api/books?limit=5").json()
    for item in first["items"][:2]:
        assert admin_api.delete(item["links"]["self"]).status_code == 204
    added = user_api.post("/api/books", json=book_payload()).json()["id"]
    rest = [i["id"] for b in walk_cursor(api, "/api/books?limit=5") for i in b["items"]][3:]
    resumed = api.get("/api/books", params={"cursor": first["next_cursor"], "limit": 100})
    assert ids(resumed) == rest
    assert ids(resumed)[-1] == added
    assert not set(ids(resumed)) & {i["id"] for i in first["items"]}


def test_cursor_queries_use_no_offset(app: Flask, api: Api) -> None:
    seed(app, 30)
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement.upper(), parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        body = api.get("/api/books?limit=5&sort=-price").json()
        api.get("/api/books", params={"cursor": body["next_cursor"], "limit": 5})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    selects = [(s, p) for s, p in statements if "FROM BOOKS" in s]
    # One query for the first page; up to three index seeks for a page after a cursor.
    assert 2 <= len(selects) <= 4
    for statement, parameters in selects:
        # SQLAlchemy's SQLite dialect always writes "LIMIT ? OFFSET ?"; the offset is 0.
        assert "OFFSET" not in statement or list(parameters)[-1] == 0, (statement, parameters)


# -- a user's books -----------------------------------------------------------------------


def test_user_books_lists_only_theirs_in_both_modes(
    app: Flask, api: Api, make_user: MakeUser
) -> None:
    alice, _ = make_user()
    bob, _ = make_user()
    seed(app, 7, owner_id=alice["id"])
    seed(app, 5, owner_id=bob["id"])
    seed(app, 3)
    path = f"/api/users/{alice['id']}/books"
    body = api.get(f"{path}?per_page=3&genre=Fiction").json()
    assert all(item["owner_id"] == alice["id"] for item in body["items"])
    every = api.get(f"{path}?per_page=100").json()
    assert every["pagination"]["total_items"] == 7
    assert {urlsplit(link).path for link in body["links"].values() if link} == {path}
    walked = [i["id"] for i in every["items"]]
    response = api.get(f"{path}?limit=3")
    cursor_ids = ids(response)
    cursor = response.json()["next_cursor"]
    while cursor:
        page = api.get(path, params={"cursor": cursor, "limit": 3}).json()
        cursor_ids += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert cursor_ids == walked


def test_a_user_list_cursor_only_works_on_that_list(
    app: Flask, api: Api, make_user: MakeUser
) -> None:
    alice, _ = make_user()
    bob, _ = make_user()
    seed(app, 6, owner_id=alice["id"])
    seed(app, 6, owner_id=bob["id"])
    alices = api.get(f"/api/users/{alice['id']}/books?limit=2").json()["next_cursor"]
    everyone = api.get("/api/books?limit=2").json()["next_cursor"]
    assert_problem(api.get(f"/api/users/{bob['id']}/books", params={"cursor": alices}), 400)
    assert_problem(api.get("/api/books", params={"cursor": alices}), 400)
    assert_problem(api.get(f"/api/users/{alice['id']}/books", params={"cursor": everyone}), 400)
    assert len(ids(api.get(f"/api/users/{alice['id']}/books", params={"cursor": alices}))) == 4


def test_books_of_an_absent_user_are_404(api: Api) -> None:
    assert_problem(api.get("/api/users/424242/books"), 404)
