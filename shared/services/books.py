"""The catalog: create, change and delete books; list, page and search them."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    false,
    func,
    literal,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.exc import IntegrityError

from shared.db import CENT, MAX_ID, DbSession
from shared.errors import Conflict, NotFound, PermissionDenied
from shared.models import Book, User, author_key
from shared.models.book import ISBN_UNIQUE
from shared.schemas.book import MAX_PRICE, search_words

NULLABLE_SORTS = {"published_year", "price"}
UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE
_FTS = table("books_fts")  # SQLite FTS5 shadow of books(title, author), rowid = books.id


@dataclass(frozen=True, kw_only=True)
class BookFilters:
    genre: str | None = None
    author: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    q: str | None = None
    owner_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The filters that are set, JSON-ready (what a cursor is bound to)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Page:
    items: list[Book]
    total: int


@dataclass(frozen=True)
class KeysetPage:
    items: list[Book]
    has_more: bool
    last_key: list[Any] | None


# -- writes -------------------------------------------------------------------------------


def create_book(session: DbSession, *, owner: User, data: dict[str, Any]) -> Book:
    """Add a book owned by ``owner``; ``Conflict`` on an ISBN taken in either form."""
    book = Book(**data, owner_id=owner.id)
    _ensure_isbn_free(session, book)
    session.add(book)
    _flush(session, book)
    return book


def get_book(session: DbSession, book_id: int) -> Book:
    book = session.get(Book, book_id) if 0 < book_id <= MAX_ID else None
    if book is None:
        raise NotFound(f"Book {book_id} does not exist.")
    return book


def update_book(session: DbSession, book: Book, data: dict[str, Any]) -> Book:
    """Apply ``data`` (all fields for a replace, some for a patch) to an editable book.

    The caller got ``book`` from ``editable_book``, which checked who may change it.
    """
    for key, value in data.items():
        setattr(book, key, value)
    if "isbn" in data:
        _ensure_isbn_free(session, book)
    _flush(session, book)
    return book


def editable_book(session: DbSession, *, book_id: int, actor: User) -> Book:
    """The book, if ``actor`` may change it (``NotFound``, ``PermissionDenied``)."""
    book = get_book(session, book_id)
    ensure_can_edit(actor, book)
    return book


def delete_book(session: DbSession, *, book_id: int, actor: User) -> None:
    book = editable_book(session, book_id=book_id, actor=actor)
    session.delete(book)
    session.flush()


def ensure_can_edit(actor: User, book: Book) -> None:
    if not actor.is_admin and book.owner_id != actor.id:
        raise PermissionDenied("Only the book's owner or an admin may change it.")


def _ensure_isbn_free(session: DbSession, book: Book) -> None:
    """``Conflict`` when another book has ``book``'s ISBN, in either of its forms."""
    if book.isbn13 is None:
        return
    taken = select(Book.id).where(Book.isbn13 == book.isbn13)
    if book.id is not None:
        taken = taken.where(Book.id != book.id)
    with session.no_autoflush:  # ``book`` is not written before the check has passed
        if session.scalar(taken.limit(1)) is not None:
            raise _isbn_conflict(book)


def _flush(session: DbSession, book: Book) -> None:
    """Flush; a concurrent writer that took the ISBN after the check is a ``Conflict``.

    Only a violation of the ISBN's unique constraint is: any other integrity error is
    a bug or a state nobody planned for, and is raised as it is (a logged 500).
    """
    try:
        session.flush()
    except IntegrityError as exc:
        if not _violates_isbn_unique(exc):
            raise
        raise _isbn_conflict(book) from None


def _isbn_conflict(book: Book) -> Conflict:
    return Conflict(f"A book with ISBN {book.isbn13} already exists.", field="isbn")


def _violates_isbn_unique(exc: IntegrityError) -> bool:
    """Whether ``exc`` is a unique violation on ``books.isbn13``, on either backend."""
    error = exc.orig
    diag = getattr(error, "diag", None)
    if diag is not None:  # psycopg: SQLSTATE 23505 names the violated constraint
        return getattr(error, "sqlstate", None) == UNIQUE_VIOLATION and (
            diag.constraint_name == ISBN_UNIQUE
        )
    return str(error) == "UNIQUE constraint failed: books.isbn13"  # sqlite3


# -- reads --------------------------------------------------------------------------------


def count_books(session: DbSession, filters: BookFilters) -> int:
    return session.scalar(filtered(session, select(func.count(Book.id)), filters)) or 0


def list_books(
    session: DbSession, *, filters: BookFilters, sort: str, page: int, per_page: int,
    total: int | None = None,
) -> Page:  # fmt: skip
    """One page (OFFSET) of the filtered catalog, with the total (counted unless given)."""
    if total is None:
        total = count_books(session, filters)
    offset = (page - 1) * per_page
    if offset >= total:  # past the end: also keeps absurd pages from reaching the database
        return Page([], total)
    query = filtered(session, select(Book), filters).order_by(*_ordering(sort))
    return Page(list(session.scalars(query.limit(per_page).offset(offset))), total)


def list_books_after(
    session: DbSession, *, filters: BookFilters, sort: str, after: list[Any] | None, limit: int
) -> KeysetPage:
    """The ``limit`` books after the sort key ``after`` (keyset: same cost at any depth).

    The rows after ``(value, id)`` are read as up to three index seeks in sort order:
    the rest of the rows equal to ``value``, then the rows beyond ``value``, then the
    trailing NULLs. A single ``(col, id) > (value, id)`` comparison would let SQLite
    narrow its scan on ``col`` only and step over every earlier row sharing ``value``,
    so a deep page would cost more wherever values repeat (bulk inserts share one
    ``created_at``).
    """
    base = filtered(session, select(Book), filters)
    segments = [base.order_by(*_ordering(sort))] if after is None else _segments(base, sort, after)
    rows: list[Book] = []
    for segment in segments:
        rows += session.scalars(segment.limit(limit + 1 - len(rows)))
        if len(rows) > limit:
            break
    items = rows[:limit]
    last = sort_key(items[-1], sort) if items else None
    return KeysetPage(items, has_more=len(rows) > limit, last_key=last)


def search_books(
    session: DbSession, *, q: str, page: int, per_page: int, total: int | None = None
) -> Page:
    """Full-text search over title and author, best match first (title above author)."""
    if total is None:
        total = count_books(session, BookFilters(q=q))
    offset = (page - 1) * per_page
    if offset >= total:
        return Page([], total)
    if session.get_bind().dialect.name == "sqlite":
        query = (
            select(Book)
            .join(_FTS, literal_column("books_fts.rowid") == Book.id)
            .where(literal_column("books_fts").op("MATCH")(_fts5_query(search_words(q))))
            .order_by(literal_column("bm25(books_fts, 2.0, 1.0)"), Book.id)
        )
    else:
        tsquery = _tsquery(session, q)
        if tsquery is None:
            return Page([], total)
        vector: ColumnElement[Any] = literal_column("books.search_vector")
        query = (
            select(Book)
            .where(vector.op("@@")(tsquery))
            .order_by(func.ts_rank(vector, tsquery).desc(), Book.id)
        )
    items = session.scalars(query.limit(per_page).offset(offset))
    return Page(list(items), total)


def sort_key(book: Book, sort: str) -> list[Any]:
    """The JSON-ready ``[value, id]`` that a cursor remembers for ``book``."""
    value = getattr(book, sort.lstrip("-"))
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    return [value, book.id]


def parse_sort_key(sort: str, key: list[Any]) -> list[Any]:
    """Inverse of ``sort_key``; ``ValueError`` for a key that does not fit the sort.

    Only this server signs cursors, yet a key must also be one a stored row could have:
    a huge number or a time without a zone would fail in the driver, as a 500.
    """
    value, last_id = key
    name = sort.lstrip("-")
    if not _is_id(last_id):
        raise ValueError("bad id")
    if value is None:
        if name not in NULLABLE_SORTS:
            raise ValueError("null key")
        return [None, last_id]
    parsers: dict[str, Any] = {
        "id": _int_key, "title": _text_key, "published_year": _int_key, "price": _price_key,
        "created_at": _time_key,
    }  # fmt: skip
    return [parsers[name](value), last_id]


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def _int_key(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > MAX_ID:
        raise ValueError("bad integer")
    return value


def _text_key(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("bad text")
    return value


def _price_key(value: Any) -> Decimal:
    price = Decimal(value) if isinstance(value, str) else Decimal("NaN")
    if not price.is_finite() or abs(price) > MAX_PRICE or price != price.quantize(CENT):
        raise ValueError("bad price")
    return price


def _time_key(value: Any) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("naive time")
    return moment


def _ordering(sort: str) -> list[ColumnElement[Any]]:
    name = sort.lstrip("-")
    descending = sort.startswith("-")
    column = getattr(Book, name)
    ordered = column.desc() if descending else column.asc()
    if name in NULLABLE_SORTS:
        ordered = ordered.nulls_last()  # the same on SQLite and PostgreSQL
    if name == "id":
        return [ordered]
    return [ordered, Book.id.desc() if descending else Book.id.asc()]


def _segments(base: Select[Any], sort: str, key: list[Any]) -> list[Select[Any]]:
    """Queries that, read in turn, give the rows after ``key`` in ``sort`` order."""
    name, descending = sort.lstrip("-"), sort.startswith("-")
    value, last_id = key
    column = getattr(Book, name)
    by_id = Book.id.desc() if descending else Book.id.asc()
    after_id = Book.id < last_id if descending else Book.id > last_id
    if name == "id":
        return [base.where(after_id).order_by(by_id)]
    if value is None:  # inside the trailing block of NULLs, ordered by id
        return [base.where(column.is_(None), after_id).order_by(by_id)]
    beyond = column < value if descending else column > value
    segments = [
        base.where(column == value, after_id).order_by(by_id),
        base.where(beyond).order_by(column.desc() if descending else column.asc(), by_id),
    ]
    if name in NULLABLE_SORTS:
        segments.append(base.where(column.is_(None)).order_by(by_id))
    return segments


def filtered(session: DbSession, query: Select[Any], filters: BookFilters) -> Select[Any]:
    if filters.genre is not None:
        query = query.where(Book.genre == filters.genre)
    if filters.author is not None:
        query = query.where(Book.author_key == author_key(filters.author))
    if filters.year_from is not None:
        query = query.where(Book.published_year >= filters.year_from)
    if filters.year_to is not None:
        query = query.where(Book.published_year <= filters.year_to)
    if filters.owner_id is not None:
        query = query.where(Book.owner_id == filters.owner_id)
    if filters.q is not None:
        query = query.where(_matches(session, filters.q))
    return query


def _matches(session: DbSession, q: str) -> ColumnElement[bool]:
    """Every word matches a word of the title or author, whole or as a prefix."""
    if session.get_bind().dialect.name == "sqlite":
        ids: Select[Any] = (
            select(literal_column("rowid"))
            .select_from(_FTS)
            .where(literal_column("books_fts").op("MATCH")(_fts5_query(search_words(q))))
        )
        return Book.id.in_(ids)
    tsquery = _tsquery(session, q)
    if tsquery is None:
        return false()
    return literal_column("books.search_vector").op("@@")(tsquery)


def _fts5_query(words: list[str]) -> str:
    """``"word"*`` per word: FTS5 tokenizes and case-folds each quoted word as it did the text."""
    return " ".join(f'"{word}"*' for word in words)


def _tsquery(session: DbSession, q: str) -> ColumnElement[Any] | None:
    """``'lexeme':* & ...`` from PostgreSQL's own parsing of ``q``; ``None`` when it finds
    no word (``¼`` or ``²`` are digits to Python, not to PostgreSQL): nothing matches.

    The words are those the ``simple`` configuration made of the indexed text, so that
    ``node.js``, ``3.14`` or ``ÉMILE`` (whose lexemes are ``node.js``, ``3.14`` and, in a
    ``C`` locale, ``Émile``) find what they name; a Python split would look for ``js`` or
    ``émile``, which the index does not hold.
    """
    lexemes = session.scalar(select(func.tsvector_to_array(func.to_tsvector("simple", q))))
    if not lexemes:
        return None
    quoted = (lexeme.replace("\\", "\\\\").replace("'", "''") for lexeme in lexemes)
    return literal(" & ".join(f"'{lexeme}':*" for lexeme in quoted)).cast(TSQUERY)
