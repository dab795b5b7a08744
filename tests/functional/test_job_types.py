"""The job types of API.md section 4 over HTTP, run by a real Celery worker.

``books.import`` (row validation, ``on_error``, ``on_conflict``, ownership, batches),
``books.export`` (CSV and JSON Lines, filters, the download, a round trip) and
``books.report`` (totals, groups, top authors), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from shared.isbn import isbn10_check_digit, isbn13_check_digit
from tests.functional.conftest import assert_problem, book_payload
from tests.support.live import Api
from tests.support.workers import CeleryProcess

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
TERMINAL = ("succeeded", "failed", "cancelled")
EXPORT_COLUMNS = ["id", "title", "author", "isbn", "published_year", "genre", "price",
                  "owner_id", "created_at", "updated_at"]  # fmt: skip
GENRES = ("Fiction", "Science", "History", "Non-Fiction")


# -- helpers ------------------------------------------------------------------------------


def isbn_pair(n: int) -> tuple[str, str]:
    """The ISBN-10 and the ISBN-13 of one book (``978`` + the same nine digits)."""
    body = f"{n:09d}"
    return body + isbn10_check_digit(body), "978" + body + isbn13_check_digit("978" + body)


def isbn13(n: int) -> str:
    return isbn_pair(n)[1]


def hyphenated_isbn10(n: int) -> str:
    digits = isbn_pair(n)[0]
    return f"{digits[0]}-{digits[1:4]}-{digits[4:9]}-{digits[9]}"


def row(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid import row with ISBN number ``n``."""
    values = {"title": f"Book {n}", "author": f"Author {n % 7}", "isbn": isbn13(n),
              "published_year": 1900 + n % 120, "genre": GENRES[n % 4],
              "price": (n % 9000) / 100}  # fmt: skip
    return values | overrides


def submit(client: Api, job_type: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/jobs", json={"type": job_type, "params": params})
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    return job


def wait_for(client: Api, job_id: str) -> dict[str, Any]:
    """The job once terminal (``?wait=10``, a few times for the big ones)."""
    job: dict[str, Any] = {}
    for _ in range(6):
        response = client.get(f"/api/jobs/{job_id}", params={"wait": 10})
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in TERMINAL:
            return job
    pytest.fail(f"job {job_id} is still {job['status']}: {job}")


def run(client: Api, job_type: str, params: dict[str, Any]) -> dict[str, Any]:
    return wait_for(client, submit(client, job_type, params)["id"])


def run_import(client: Api, books: list[dict[str, Any]], **options: str) -> dict[str, Any]:
    return run(client, "books.import", {"books": books, **options})


def succeeded(job: dict[str, Any]) -> dict[str, Any]:
    """The result of a job that must have succeeded."""
    assert job["status"] == "succeeded", job
    assert job["error"] is None
    result: dict[str, Any] = job["result"]
    return result


def rows_invalid(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The listed row errors of an import that must have failed on invalid rows."""
    assert job["status"] == "failed", job
    assert job["result"] is None
    error = job["error"]
    assert error["type"] == "/problems/import-rows-invalid"
    assert error["title"]
    assert error["detail"]
    errors: list[dict[str, Any]] = error["errors"]
    return errors


def listed(errors: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Row errors as {row: the fields named}."""
    assert all(set(entry) == {"row", "errors"} for entry in errors), errors
    assert all(
        isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)
        for entry in errors
        for messages in entry["errors"].values()
    ), errors
    return {entry["row"]: sorted(entry["errors"]) for entry in errors}


def catalog(client: Api, **filters: Any) -> list[dict[str, Any]]:
    """Every book of ``GET /api/books`` (with ``filters``), page by page, in id order."""
    books: list[dict[str, Any]] = []
    page = 1
    while True:
        response = client.get("/api/books", params={**filters, "per_page": 100, "page": page})
        assert response.status_code == 200, response.text
        body = response.json()
        books += body["items"]
        if not body["pagination"]["has_next"]:
            return books
        page += 1


def total_books(client: Api) -> int:
    response = client.get("/api/books", params={"per_page": 1})
    assert response.status_code == 200, response.text
    total: int = response.json()["pagination"]["total_items"]
    return total


def create_book(client: Api, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/books", json=book_payload(**overrides))
    assert response.status_code == 201, response.text
    book: dict[str, Any] = response.json()
    return book


def get_book(client: Api, book_id: int) -> dict[str, Any]:
    response = client.get(f"/api/books/{book_id}")
    assert response.status_code == 200, response.text
    book: dict[str, Any] = response.json()
    return book


def by_isbn(books: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {book["isbn"]: book for book in books}


def fields_of(book: dict[str, Any]) -> dict[str, Any]:
    return {k: book[k] for k in ("title", "author", "isbn", "published_year", "genre", "price")}


def no_jobs(client: Api) -> None:
    response = client.get("/api/jobs")
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


# -- books.import: valid rows -------------------------------------------------------------


def test_import_creates_valid_rows_owned_by_the_submitter(
    worker: CeleryProcess, api: Api, make_user: MakeUser
) -> None:
    user, client = make_user()
    assert catalog(api) == []  # read once before the import
    rows = [
        row(1),
        {"title": "  Only Required  ", "author": " Someone "},
        row(2, isbn=hyphenated_isbn10(2), price=12.5, genre="History"),
    ]
    job = run_import(client, rows)
    assert succeeded(job) == {"created": 3, "updated": 0, "skipped": 0, "errors": []}
    assert job["params"]["on_conflict"] == "fail"
    assert job["params"]["on_error"] == "abort"
    assert job["progress"]["percent"] == 100.0
    assert job["attempts"] == 1
    assert job["cancel_requested"] is False
    assert job["started_at"] is not None
    assert job["finished_at"] is not None
    assert job["expires_at"] is not None

    books = catalog(api)  # public, read through the web process after the worker wrote
    assert [fields_of(b) for b in books] == [
        fields_of(row(1)),
        {"title": "Only Required", "author": "Someone", "isbn": None, "published_year": None,
         "genre": None, "price": None},
        fields_of(row(2, isbn=isbn_pair(2)[0], price=12.5, genre="History")),
    ]  # fmt: skip
    assert {b["owner_id"] for b in books} == {user["id"]}
    assert get_book(api, books[0]["id"]) == books[0]
    mine = client.get(f"/api/users/{user['id']}/books")
    assert mine.status_code == 200, mine.text
    assert [b["id"] for b in mine.json()["items"]] == [b["id"] for b in books]


def test_import_of_3000_rows_creates_every_book(
    worker: CeleryProcess, api: Api, make_user: MakeUser
) -> None:
    user, client = make_user()
    rows = [row(n) for n in range(1, 3001)]
    job = run_import(client, rows)
    assert succeeded(job) == {"created": 3000, "updated": 0, "skipped": 0, "errors": []}
    assert job["progress"]["percent"] == 100.0
    books = catalog(api)
    assert len(books) == 3000
    assert {isbn: fields_of(b) for isbn, b in by_isbn(books).items()} == {
        r["isbn"]: fields_of(r) for r in rows
    }
    assert {b["owner_id"] for b in books} == {user["id"]}


# -- books.import: invalid rows -----------------------------------------------------------

INVALID_ROWS: list[tuple[dict[str, Any], str]] = [
    (row(11, isbn="9780451524936"), "isbn"),  # wrong check digit
    ({k: v for k, v in row(12).items() if k != "title"}, "title"),  # missing
    (row(13, price=1.234), "price"),  # three decimals
    (row(14, published_year=999), "published_year"),
    (row(15, published_year=2101), "published_year"),
    (row(16, publisher="Penguin"), "publisher"),  # unknown field
    (row(17, genre="Poetry"), "genre"),
    (row(18, id=5), "id"),  # read-only, like any unknown field
    (row(19, title="   "), "title"),
    (row(20, price=-1), "price"),
]
# Valid rows at 0, 4 and the end; the invalid ones in between.
MIXED_ROWS = [row(1), *[r for r, _ in INVALID_ROWS[:3]], row(2),
              *[r for r, _ in INVALID_ROWS[3:]], row(3)]  # fmt: skip
# row -> the one field its errors name
MIXED_ERRORS = {index: [field] for index, (_, field) in
                zip([1, 2, 3, *range(5, 12)], INVALID_ROWS, strict=True)}  # fmt: skip


def test_import_abort_fails_on_invalid_rows_and_inserts_nothing(
    worker: CeleryProcess, api: Api, user_api: Api
) -> None:
    job = run_import(user_api, MIXED_ROWS)
    errors = rows_invalid(job)
    assert listed(errors) == MIXED_ERRORS
    assert [e["row"] for e in errors] == sorted(MIXED_ERRORS)  # in row order
    assert total_books(api) == 0
    # The same rules as POST /api/books: the same messages, field by field.
    by_row = {e["row"]: e["errors"] for e in errors}
    for index in MIXED_ERRORS:
        response = user_api.post("/api/books", json=MIXED_ROWS[index])
        problem = assert_problem(response, 400, kind="validation-error")
        assert by_row[index] == problem["errors"], index
    assert total_books(api) == 0


def test_import_judges_the_exact_numbers_sent(
    worker: CeleryProcess, api: Api, user_api: Api
) -> None:
    """A price is checked as written, not as the float nearest to it (as POST does)."""
    rows = ['{"title": "Too precise", "author": "A", "price": 9.99000000000000000001}',
            '{"title": "Too small", "author": "A", "price": 1e-400}',
            '{"title": "Fine", "author": "A", "price": 9.990}']  # fmt: skip
    body = f'{{"type": "books.import", "params": {{"books": [{", ".join(rows)}]}}}}'
    response = user_api.post("/api/jobs", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    job = wait_for(user_api, response.json()["id"])
    expected = []
    for index, text in enumerate(rows[:2]):
        answer = user_api.post("/api/books", data=text,
                               headers={"Content-Type": "application/json"})  # fmt: skip
        problem = assert_problem(answer, 400, kind="validation-error")
        assert list(problem["errors"]) == ["price"]
        expected.append({"row": index, "errors": problem["errors"]})
    assert job["status"] == "failed", job["result"]
    assert rows_invalid(job) == expected
    assert total_books(api) == 0


def test_import_skip_inserts_valid_rows_and_lists_invalid_ones(
    worker: CeleryProcess, api: Api, make_user: MakeUser
) -> None:
    user, client = make_user()
    result = succeeded(run_import(client, MIXED_ROWS, on_error="skip"))
    assert set(result) == {"created", "updated", "skipped", "errors"}
    assert (result["created"], result["updated"], result["skipped"]) == (3, 0, 10)
    assert listed(result["errors"]) == MIXED_ERRORS
    books = catalog(api)
    assert [fields_of(b) for b in books] == [fields_of(row(n)) for n in (1, 2, 3)]
    assert {b["owner_id"] for b in books} == {user["id"]}


def test_import_lists_the_first_100_invalid_rows(
    worker: CeleryProcess, api: Api, make_user: MakeUser
) -> None:
    _, client = make_user(tier="premium")
    invalid = [row(n, published_year=999) for n in range(1, 151)]
    abort = submit(client, "books.import", {"books": invalid})
    skip = submit(client, "books.import", {"books": [row(500), *invalid], "on_error": "skip"})

    errors = rows_invalid(wait_for(client, abort["id"]))
    assert [e["row"] for e in errors] == list(range(100))
    assert all(list(e["errors"]) == ["published_year"] for e in errors)

    result = succeeded(wait_for(client, skip["id"]))
    assert (result["created"], result["updated"], result["skipped"]) == (1, 0, 150)
    assert [e["row"] for e in result["errors"]] == list(range(1, 101))
    assert [b["isbn"] for b in catalog(api)] == [isbn13(500)]


# -- books.import: on_conflict ------------------------------------------------------------


@pytest.mark.parametrize("on_error", ["abort", "skip"])
def test_conflict_fail_treats_a_known_isbn_as_an_invalid_row(
    worker: CeleryProcess, api: Api, user_api: Api, on_error: str
) -> None:
    existing = create_book(user_api, isbn=isbn13(1), title="Existing")
    rows = [
        row(2),
        row(1, title="Clash with the catalog", isbn=hyphenated_isbn10(1)),  # same book
        row(3),
        row(2, title="Clash with row 0", isbn=isbn_pair(2)[0]),  # ISBN-10 of row 0's
        row(4, title="Clash with row 2", isbn=isbn13(3)),
    ]
    job = run_import(user_api, rows, on_error=on_error)
    if on_error == "abort":
        errors = rows_invalid(job)
        assert [b["id"] for b in catalog(api)] == [existing["id"]]
    else:
        result = succeeded(job)
        assert (result["created"], result["updated"], result["skipped"]) == (2, 0, 3)
        errors = result["errors"]
        books = by_isbn(catalog(api))
        assert set(books) == {isbn13(1), isbn13(2), isbn13(3)}
        assert fields_of(books[isbn13(2)]) == fields_of(row(2))  # the first row wins
        assert fields_of(books[isbn13(3)]) == fields_of(row(3))
    assert listed(errors) == {1: ["isbn"], 3: ["isbn"], 4: ["isbn"]}
    assert get_book(api, existing["id"]) == existing


def test_conflict_skip_keeps_the_existing_book(
    worker: CeleryProcess, api: Api, user_api: Api
) -> None:
    existing = create_book(user_api, isbn=isbn13(1), title="Existing")
    rows = [
        row(1, title="Not applied", isbn=hyphenated_isbn10(1)),
        row(2),
        row(2, title="Not applied either"),
        row(3),
    ]
    result = succeeded(run_import(user_api, rows, on_conflict="skip"))
    assert result == {"created": 2, "updated": 0, "skipped": 2, "errors": []}
    assert get_book(api, existing["id"]) == existing
    books = by_isbn(catalog(api))
    assert set(books) == {isbn13(1), isbn13(2), isbn13(3)}
    assert fields_of(books[isbn13(2)]) == fields_of(row(2))


def test_conflict_update_overwrites_the_existing_book(
    worker: CeleryProcess, api: Api, make_user: MakeUser
) -> None:
    user, client = make_user()
    existing = create_book(client, isbn=isbn13(1), title="Old title", price=1.0)
    assert get_book(api, existing["id"]) == existing  # read once before the import
    rows = [
        row(1, title="New title", author="New Author", published_year=2001, genre="Science",
            price=42.42),
        row(2),
        row(2, title="Second spelling wins", isbn=isbn_pair(2)[0]),
    ]  # fmt: skip
    result = succeeded(run_import(client, rows, on_conflict="update"))
    assert result == {"created": 1, "updated": 2, "skipped": 0, "errors": []}
    book = get_book(api, existing["id"])
    assert fields_of(book) == fields_of(rows[0])
    assert book["owner_id"] == user["id"]
    assert book["created_at"] == existing["created_at"]
    books = by_isbn(catalog(api))
    assert len(books) == 2
    [second] = [b for b in books.values() if b["id"] != existing["id"]]
    assert second["title"] == "Second spelling wins"
    assert second["owner_id"] == user["id"]


def test_conflict_update_of_another_users_book_is_for_admins_only(
    worker: CeleryProcess, api: Api, make_user: MakeUser
) -> None:
    owner, owner_api = make_user()
    _, other_api = make_user()
    _, admin_api = make_user(role="admin")
    existing = create_book(owner_api, isbn=isbn13(1), title="Owned")
    change = row(1, title="Changed by someone else")
    assert get_book(api, existing["id"]) == existing  # read once before the imports

    refused = rows_invalid(run_import(other_api, [change, row(2)], on_conflict="update"))
    assert listed(refused) == {0: ["isbn"]}
    result = succeeded(run_import(other_api, [change, row(2)], on_conflict="update",
                                  on_error="skip"))  # fmt: skip
    assert (result["created"], result["updated"], result["skipped"]) == (1, 0, 1)
    assert listed(result["errors"]) == {0: ["isbn"]}
    assert get_book(api, existing["id"]) == existing

    result = succeeded(run_import(admin_api, [change], on_conflict="update"))
    assert result == {"created": 0, "updated": 1, "skipped": 0, "errors": []}
    book = get_book(api, existing["id"])
    assert fields_of(book) == fields_of(change)
    assert book["owner_id"] == owner["id"]  # an update does not change hands
    assert total_books(api) == 2


# -- books.export -------------------------------------------------------------------------

SMALL_CATALOG = [
    {"title": "The Dispossessed", "author": "Ursula K. Le Guin", "published_year": 1974,
     "genre": "Fiction", "price": 9.99},
    {"title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin", "published_year": 1969,
     "genre": "Fiction", "price": 8.5},
    {"title": "A Brief History of Time", "author": "Stephen Hawking", "published_year": 1988,
     "genre": "Science", "price": 15.0},
    {"title": "The Guns of August", "author": "Barbara Tuchman", "published_year": 1962,
     "genre": "History", "price": 12.25},
    {"title": "Cosmos", "author": "Carl Sagan", "published_year": 1980, "genre": "Science",
     "price": 11.0},
    {"title": "Silent Spring", "author": "Rachel Carson", "published_year": 1962,
     "genre": "Non-Fiction", "price": 10.4},
    {"title": "Dune", "author": "Frank Herbert", "published_year": 1965, "genre": "Fiction"},
]  # fmt: skip
# filters -> the titles they match
EXPORT_FILTERS: list[tuple[dict[str, Any], set[str]]] = [
    ({}, {b["title"] for b in SMALL_CATALOG}),
    ({"genre": "Fiction"}, {"The Dispossessed", "The Left Hand of Darkness", "Dune"}),
    ({"author": "ursula k. LE GUIN"}, {"The Dispossessed", "The Left Hand of Darkness"}),
    ({"year_from": 1965, "year_to": 1980},
     {"The Dispossessed", "The Left Hand of Darkness", "Cosmos", "Dune"}),
    ({"q": "the dark"}, {"The Left Hand of Darkness"}),
    ({"genre": "Science", "year_from": 1985}, {"A Brief History of Time"}),
    ({"genre": "History", "year_to": 1900}, set()),
]  # fmt: skip


def parse_export(fmt: str, content: bytes) -> list[dict[str, Any]]:
    """The exported records, typed like the API's books (without ``links``)."""
    text = content.decode("utf-8")
    if fmt == "jsonl":
        lines = text.split("\n")
        assert lines[-1] == ""  # every record ends its line
        records = [json.loads(line) for line in lines[:-1]]
        assert all(list(r) == EXPORT_COLUMNS for r in records)
        return records
    reader = csv.reader(io.StringIO(text, newline=""))
    header, *cells = list(reader)
    assert header == EXPORT_COLUMNS
    typed = {"id": int, "published_year": int, "owner_id": int, "price": float}
    return [
        {name: (None if value == "" else typed.get(name, str)(value))
         for name, value in zip(header, values, strict=True)}
        for values in cells
    ]  # fmt: skip


def download(client: Api, job: dict[str, Any]) -> bytes:
    """The export file of a succeeded job, checked against its result."""
    result = succeeded(job)
    assert set(result) == {"rows", "bytes", "format", "url"}
    assert result["url"] == f"/api/jobs/{job['id']}/result"
    response = client.get(result["url"])
    assert response.status_code == 200, response.text
    media = {"csv": "text/csv", "jsonl": "application/x-ndjson"}[result["format"]]
    assert response.headers["Content-Type"].split(";")[0].strip() == media
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Cache-Control"] == "no-store"
    assert result["bytes"] == len(response.content)
    return response.content


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_writes_the_books_matching_each_filter(
    worker: CeleryProcess, api: Api, make_user: MakeUser, fmt: str
) -> None:
    user, client = make_user(tier="premium")
    seeded = [b | {"isbn": isbn13(n)} for n, b in enumerate(SMALL_CATALOG, start=1)]
    succeeded(run_import(client, seeded))
    seeded_ids = {b["title"]: b["id"] for b in catalog(api)}
    jobs = [submit(client, "books.export", {"format": fmt, "filters": filters})
            for filters, _ in EXPORT_FILTERS]  # fmt: skip
    for submitted, (filters, titles) in zip(jobs, EXPORT_FILTERS, strict=True):
        job = wait_for(client, submitted["id"])
        records = parse_export(fmt, download(client, job))
        assert job["result"]["format"] == fmt
        assert job["result"]["rows"] == len(records) == len(titles), filters
        assert {r["title"] for r in records} == titles, filters
        listing = catalog(api, **filters)  # the export matches the listing, book for book
        assert records == [{k: b[k] for k in EXPORT_COLUMNS} for b in listing], filters
        assert all(r["owner_id"] == user["id"] for r in records)
        assert all(r["id"] == seeded_ids[r["title"]] for r in records)


def test_export_of_2500_books_is_complete_and_re_imports_as_all_skipped(
    worker: CeleryProcess, api: Api, make_user: MakeUser
) -> None:
    _, client = make_user()
    rows = [row(n) for n in range(1, 2501)]
    succeeded(run_import(client, rows))
    ids = [b["id"] for b in catalog(api)]
    assert len(ids) == 2500

    content = download(client, run(client, "books.export", {"format": "csv"}))
    records = parse_export("csv", content)
    assert [r["id"] for r in records] == ids  # complete, in id order, across batches
    assert {r["isbn"]: {k: r[k] for k in fields_of(r)} for r in records} == {
        r["isbn"]: fields_of(r) for r in rows
    }

    response = client.post("/api/books/imports", params={"on_conflict": "skip"}, data=content,
                           headers={"Content-Type": "text/csv"})  # fmt: skip
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/api/jobs/{response.json()['id']}"
    job = wait_for(client, response.json()["id"])
    assert job["type"] == "books.import"
    assert succeeded(job) == {"created": 0, "updated": 0, "skipped": 2500, "errors": []}
    assert [b["id"] for b in catalog(api)] == ids


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "xml"}, "params.format"),
        ({"filters": {"publisher": "Penguin"}}, "params.filters.publisher"),
        ({"filters": {"genre": "Poetry"}}, "params.filters.genre"),
        ({"filters": {"year_from": 1000, "year_to": 2101}}, "params.filters.year_to"),
        ({"format": "csv", "compress": True}, "params.compress"),
    ],
    ids=["format", "unknown-filter", "genre", "year", "unknown-param"],
)
def test_invalid_export_params_are_400_and_queue_nothing(
    user_api: Api, params: dict[str, Any], field: str
) -> None:
    response = user_api.post("/api/jobs", json={"type": "books.export", "params": params})
    problem = assert_problem(response, 400, kind="validation-error")
    assert list(problem["errors"]) == [field]
    no_jobs(user_api)


# -- books.report -------------------------------------------------------------------------

# author -> number of books: ten authors with 2+ books, then two with one.
REPORT_AUTHORS = {"Agatha Christie": 4, "Isaac Asimov": 3, "Jane Austen": 3, "Mary Beard": 2,
                  "Carl Sagan": 2, "Hilary Mantel": 2, "Yuval Harari": 2, "Ursula Le Guin": 2,
                  "Stephen Hawking": 2, "Barbara Tuchman": 2, "Frank Herbert": 1,
                  "Rachel Carson": 1}  # fmt: skip


def report_catalog() -> list[dict[str, Any]]:
    books = []
    authors = [a for a, count in REPORT_AUTHORS.items() for _ in range(count)]
    for n, author in enumerate(authors, start=1):
        books.append({"title": f"Title {n}", "author": author, "isbn": isbn13(n),
                      "genre": GENRES[n % 3], "published_year": 1900 + 7 * n,
                      "price": (137 * n % 2000 + 99) / 100})  # fmt: skip
    return books


def stats(books: list[dict[str, Any]]) -> dict[str, Any]:
    cents = [round(b["price"] * 100) for b in books]
    return {"count": len(books),
            "average_price": pytest.approx(sum(cents) / len(cents) / 100, abs=0.0051),
            "min_price": min(cents) / 100, "max_price": max(cents) / 100}  # fmt: skip


def grouped(books: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> dict[Any, Any]:
    groups: dict[Any, list[dict[str, Any]]] = {}
    for book in books:
        groups.setdefault(key(book), []).append(book)
    return {name: stats(members) for name, members in groups.items()}


def check_top_authors(top: list[dict[str, Any]]) -> None:
    assert len(top) == 10
    assert all(set(entry) == {"author", "count"} for entry in top)
    counts = [entry["count"] for entry in top]
    assert counts == sorted(counts, reverse=True)
    assert top[0] == {"author": "Agatha Christie", "count": 4}
    assert {e["author"]: e["count"] for e in top} == {
        a: c for a, c in REPORT_AUTHORS.items() if c >= 2
    }


def test_report_totals_and_top_authors(worker: CeleryProcess, user_api: Api) -> None:
    books = report_catalog()
    succeeded(run_import(user_api, books))
    result = succeeded(run(user_api, "books.report", {}))
    assert result["totals"] == stats(books)
    assert result["totals"]["count"] == 26
    assert not result.get("groups")
    check_top_authors(result["top_authors"])


def test_report_grouped_by_genre_decade_and_author(worker: CeleryProcess, user_api: Api) -> None:
    books = report_catalog()
    succeeded(run_import(user_api, books))
    job = run(user_api, "books.report", {"group_by": ["genre", "decade", "author"]})
    result = succeeded(job)
    assert result["totals"] == stats(books)
    check_top_authors(result["top_authors"])
    keys = {"genre": lambda b: b["genre"], "decade": lambda b: b["published_year"] // 10 * 10,
            "author": lambda b: b["author"]}  # fmt: skip
    assert list(result["groups"]) == ["genre", "decade", "author"]
    for name, key in keys.items():
        groups = result["groups"][name]
        assert all(set(g) == {name, "count", "average_price", "min_price", "max_price"}
                   for g in groups)  # fmt: skip
        assert {g[name]: {k: v for k, v in g.items() if k != name} for g in groups} == grouped(
            books, key
        ), name
    assert Counter({g["author"]: g["count"] for g in result["groups"]["author"]}) == Counter(
        REPORT_AUTHORS
    )


@pytest.mark.parametrize(
    "params",
    [{"group_by": ["isbn"]}, {"group_by": ["genre", "genre"]}, {"group_by": "genre"},
     {"group_by": ["genre"], "top": 5}],
    ids=["unknown-group", "duplicate", "not-a-list", "unknown-param"],
)  # fmt: skip
def test_invalid_report_params_are_400_and_queue_nothing(
    user_api: Api, params: dict[str, Any]
) -> None:
    response = user_api.post("/api/jobs", json={"type": "books.report", "params": params})
    problem = assert_problem(response, 400, kind="validation-error")
    assert problem["errors"]
    assert all(name.startswith("params.") for name in problem["errors"])
    no_jobs(user_api)
