"""The catalog: create, change and delete books; list, page and search them."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    func,
    literal_column,
    or_,
    select,
    table,
    tuple_,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.errors import Conflict, NotFound, PermissionDenied
from shared.models import Book, User
from shared.schemas.book import search_words

NULLABLE_SORTS = {"published_year", "price"}
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


def create_book(session: Session, *, owner: User, data: dict[str, Any]) -> Book:
    """Add a book owned by ``owner``; ``Conflict`` on a duplicate ISBN."""
    _ensure_isbn_free(session, data.get("isbn"))
    book = Book(**data, owner_id=owner.id)
    session.add(book)
    _flush(session)
    return book


def get_book(session: Session, book_id: int) -> Book:
    book = session.get(Book, book_id)
    if book is None:
        raise NotFound(f"Book {book_id} does not exist.")
    return book


def update_book(session: Session, *, book_id: int, actor: User, data: dict[str, Any]) -> Book:
    """Apply ``data`` (all fields for a replace, some for a patch) as owner or admin."""
    book = get_book(session, book_id)
    ensure_can_edit(actor, book)
    if data.get("isbn") is not None and data["isbn"] != book.isbn:
        _ensure_isbn_free(session, data["isbn"])
    for key, value in data.items():
        setattr(book, key, value)
    _flush(session)
    return book


def delete_book(session: Session, *, book_id: int, actor: User) -> None:
    book = get_book(session, book_id)
    ensure_can_edit(actor, book)
    session.delete(book)
    session.flush()


def ensure_can_edit(actor: User, book: Book) -> None:
    if not actor.is_admin and book.owner_id != actor.id:
        raise PermissionDenied("Only the book's owner or an admin may change it.")


def _ensure_isbn_free(session: Session, isbn: str | None) -> None:
    if isbn is not None and session.scalar(select(Book.id).where(Book.isbn == isbn)):
        raise Conflict(f"A book with ISBN {isbn} already exists.", field="isbn")


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError:  # a concurrent writer took the ISBN between check and flush
        raise Conflict("A book with this ISBN already exists.", field="isbn") from None


# -- reads --------------------------------------------------------------------------------


def list_books(
    session: Session, *, filters: BookFilters, sort: str, page: int, per_page: int
) -> Page:
    """One page (OFFSET) of the filtered catalog, with the total."""
    query = _filtered(session, select(Book), filters)
    total = session.scalar(_filtered(session, select(func.count(Book.id)), filters)) or 0
    query = query.order_by(*_ordering(sort)).limit(per_page).offset((page - 1) * per_page)
    return Page(list(session.scalars(query)), total)


def list_books_after(
    session: Session, *, filters: BookFilters, sort: str, after: list[Any] | None, limit: int
) -> KeysetPage:
    """The ``limit`` books after the sort key ``after`` (keyset: same cost at any depth)."""
    query = _filtered(session, select(Book), filters)
    if after is not None:
        query = query.where(_after(sort, after))
    rows = list(session.scalars(query.order_by(*_ordering(sort)).limit(limit + 1)))
    items = rows[:limit]
    last = sort_key(items[-1], sort) if items else None
    return KeysetPage(items, has_more=len(rows) > limit, last_key=last)


def search_books(session: Session, *, q: str, page: int, per_page: int) -> Page:
    """Full-text search over title and author, best match first."""
    words = search_words(q)
    total = session.scalar(
        _filtered(session, select(func.count(Book.id)), BookFilters(q=q))
    ) or 0  # fmt: skip
    if session.get_bind().dialect.name == "sqlite":
        query = (
            select(Book)
            .join(_FTS, literal_column("books_fts.rowid") == Book.id)
            .where(literal_column("books_fts").op("MATCH")(_fts5_query(words)))
            .order_by(literal_column("bm25(books_fts, 2.0, 1.0)"), Book.id)
        )
    else:
        tsquery = func.to_tsquery("simple", _tsquery(words))
        vector = literal_column("books.search_vector")
        query = (
            select(Book)
            .where(vector.op("@@")(tsquery))
            .order_by(func.ts_rank(vector, tsquery).desc(), Book.id)
        )
    items = session.scalars(query.limit(per_page).offset((page - 1) * per_page))
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
    """Inverse of ``sort_key``; ``ValueError`` for a key that does not fit the sort."""
    value, last_id = key
    name = sort.lstrip("-")
    if not isinstance(last_id, int) or isinstance(last_id, bool):
        raise ValueError("bad id")
    if value is None:
        if name not in NULLABLE_SORTS:
            raise ValueError("null key")
        return [None, last_id]
    parsers: dict[str, Any] = {
        "id": int, "title": str, "published_year": int, "price": Decimal,
        "created_at": dt.datetime.fromisoformat,
    }  # fmt: skip
    return [parsers[name](value), last_id]


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


def _after(sort: str, key: list[Any]) -> ColumnElement[bool]:
    name = sort.lstrip("-")
    descending = sort.startswith("-")
    value, last_id = key
    column = getattr(Book, name)
    if name == "id":
        return Book.id < last_id if descending else Book.id > last_id
    if value is None:  # inside the trailing block of NULLs, ordered by id
        return and_(column.is_(None), Book.id < last_id if descending else Book.id > last_id)
    pair = tuple_(column, Book.id)
    later = pair < (value, last_id) if descending else pair > (value, last_id)
    return or_(later, column.is_(None)) if name in NULLABLE_SORTS else later


def _filtered(session: Session, query: Select[Any], filters: BookFilters) -> Select[Any]:
    if filters.genre is not None:
        query = query.where(Book.genre == filters.genre)
    if filters.author is not None:
        query = query.where(func.lower(Book.author) == filters.author.lower())
    if filters.year_from is not None:
        query = query.where(Book.published_year >= filters.year_from)
    if filters.year_to is not None:
        query = query.where(Book.published_year <= filters.year_to)
    if filters.owner_id is not None:
        query = query.where(Book.owner_id == filters.owner_id)
    if filters.q is not None:
        query = query.where(_matches(session, search_words(filters.q)))
    return query


def _matches(session: Session, words: list[str]) -> ColumnElement[bool]:
    """Every word matches a word of the title or author, whole or as a prefix."""
    if session.get_bind().dialect.name == "sqlite":
        ids = select(literal_column("rowid")).select_from(_FTS).where(
            literal_column("books_fts").op("MATCH")(_fts5_query(words))
        )
        return Book.id.in_(ids)
    vector = literal_column("books.search_vector")
    return vector.op("@@")(func.to_tsquery("simple", _tsquery(words)))


def _fts5_query(words: list[str]) -> str:
    return " ".join(f'"{word}"*' for word in words)


def _tsquery(words: list[str]) -> str:
    return " & ".join(f"{word}:*" for word in words)
