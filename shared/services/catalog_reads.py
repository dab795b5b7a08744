"""The public catalog reads as data: what a ``GET`` answers, computable by any process.

A read is named by its kind, its path and its query (``CatalogRead``). The web computes
it for a request; a worker warming the cache computes the very same payload from the
same description, without a request. The payload is the body and the headers that
depend on the data (``Link``); ETags and ``Cache-Control`` are added per response.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import simplejson
from marshmallow import ValidationError
from werkzeug.http import generate_etag, quote_etag

from shared.cursor import INVALID_CURSOR, CursorCodec, InvalidCursor
from shared.db import DbSession
from shared.pages import page_envelope, url_only
from shared.schemas.book import (
    book_list_query_schema,
    book_schema,
    books_schema,
    search_query_schema,
)
from shared.services import books, popular
from shared.services.books import BookFilters

T = TypeVar("T")
Payload = tuple[Any, dict[str, str]]  # body, and the headers computed with it
Rendered = tuple[str, dict[str, str]]  # the JSON text, with its ETag and the rest
FILTER_KEYS = ("genre", "author", "year_from", "year_to", "q")
DEFAULT_PAGE_SIZE = 20
BOOKS_LIST, BOOK, POPULAR, SEARCH = "books.list", "books.get", "books.popular", "search"


@dataclass(frozen=True)
class CatalogRead:
    """One public read: its kind, path, query (first value of each key) and path ids."""

    kind: str
    path: str
    args: tuple[tuple[str, str], ...] = ()
    book_id: int | None = None
    owner_id: int | None = None

    @classmethod
    def of(cls, kind: str, path: str, args: Mapping[str, str], **ids: int) -> CatalogRead:
        return cls(kind, path, tuple(sorted(args.items())), **ids)

    @cached_property
    def spec(self) -> str:
        """A canonical text of the read (its identity, and how a worker replays it)."""
        fields = [self.kind, self.path, [list(a) for a in self.args], self.book_id, self.owner_id]
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_spec(cls, spec: str) -> CatalogRead:
        kind, path, args, book_id, owner_id = json.loads(spec)
        return cls(kind, path, tuple((k, v) for k, v in args), book_id, owner_id)

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.spec.encode()).hexdigest()

    @property
    def label(self) -> str:
        """How an operator reads it: ``GET /api/books?page=1``."""
        query = urlencode(self.args)
        return f"GET {self.path}?{query}" if query else f"GET {self.path}"


class Memo(Protocol):
    """Where totals are remembered per catalog version (the catalog cache)."""

    def remember(self, name: str, compute: Callable[[], T], *, ttl: int | None = None) -> T: ...


@dataclass(frozen=True)
class Reader:
    """What computing a read needs: the session, the cursor codec, and a memo of totals
    (a page of a list shares its total with the other pages of the same filters)."""

    session: DbSession
    cursors: CursorCodec
    memo: Memo | None = None

    def total(self, filters: BookFilters) -> int:
        if self.memo is None:
            return books.count_books(self.session, filters)
        name = json.dumps(filters.as_dict(), sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(name.encode()).hexdigest()
        return self.memo.remember(f"total:{digest}",
                                  lambda: books.count_books(self.session, filters))  # fmt: skip


def compute(reader: Reader, read: CatalogRead) -> Payload:
    """The payload of ``read`` from the database (``ValidationError`` for a bad query)."""
    return _KINDS[read.kind](reader, read)


def render(payload: Payload) -> Rendered:
    """The response of a read as stored in the cache: compact JSON (exact decimals, ASCII,
    as the app's JSON provider writes it), and its strong ``ETag``, computed once."""
    body, headers = payload
    text = simplejson.dumps(body, use_decimal=True, separators=(",", ":")) + "\n"
    return text, {**headers, "ETag": quote_etag(generate_etag(text.encode()))}


def _book(reader: Reader, read: CatalogRead) -> Payload:
    return book_schema.dump(books.get_book(reader.session, read.book_id or 0)), {}


def _popular(reader: Reader, _: CatalogRead) -> Payload:
    return {"items": popular.most_viewed(reader.session)}, {}


def _search(reader: Reader, read: CatalogRead) -> Payload:
    args = dict(read.args)
    query = search_query_schema.load(args)
    page, per_page, q = query["page"], query["per_page"], query["q"]
    total = reader.total(BookFilters(q=q))
    result = books.search_books(reader.session, q=q, page=page, per_page=per_page, total=total)
    body, link = page_envelope(books_schema.dump(result.items), total=result.total, page=page,
                               per_page=per_page, path=read.path, args=args)  # fmt: skip
    return body, {"Link": link}


def _listing(reader: Reader, read: CatalogRead) -> Payload:
    """``GET /api/books`` and the lists built like it (a user's books: ``owner_id``)."""
    args = dict(read.args)
    query = book_list_query_schema.load(args)
    filters = {key: query[key] for key in FILTER_KEYS if key in query}
    if read.owner_id is not None:
        filters["owner_id"] = read.owner_id
    if "cursor" in query or "limit" in query:
        return _cursor_page(reader, read, query, filters)
    sort = query.get("sort", "id")
    page, per_page = query.get("page", 1), query.get("per_page", DEFAULT_PAGE_SIZE)
    bound = BookFilters(**filters)
    result = books.list_books(reader.session, filters=bound, sort=sort, page=page,
                              per_page=per_page, total=reader.total(bound))  # fmt: skip
    body, link = page_envelope(books_schema.dump(result.items), total=result.total, page=page,
                               per_page=per_page, path=read.path, args=args)  # fmt: skip
    return body, {"Link": link}


def _cursor_page(
    reader: Reader, read: CatalogRead, query: dict[str, Any], filters: dict[str, Any]
) -> Payload:
    sort, after, cursors = query.get("sort", "id"), None, reader.cursors
    if "cursor" in query:
        sort, filters, after = _resume(cursors, query, filters)
    limit = query.get("limit", DEFAULT_PAGE_SIZE)
    result = books.list_books_after(
        reader.session, filters=BookFilters(**filters), sort=sort, after=after, limit=limit
    )
    next_cursor = None
    headers = {}
    if result.has_more and result.last_key is not None:
        next_cursor = cursors.encode(sort=sort, filters=filters, key=result.last_key)
        # The cursor carries the filters and sort: repeating them could only make the
        # link longer (past a server's request-line limit, with long non-ASCII filters).
        headers["Link"] = f'<{url_only(read.path, cursor=next_cursor, limit=limit)}>; rel="next"'
    body = {"items": books_schema.dump(result.items), "has_more": result.has_more,
            "next_cursor": next_cursor}  # fmt: skip
    return body, headers


def _resume(
    cursors: CursorCodec, query: dict[str, Any], filters: dict[str, Any]
) -> tuple[str, dict[str, Any], Any]:
    """Sort, filters and position of a cursor that must match the request's own.

    Each filter (and the sort) may be left out, and then the cursor's applies, or repeated
    with the cursor's value; any other value, or a filter the cursor was made without,
    is a 400.
    """
    try:
        sort, bound, key = cursors.decode(query["cursor"])
        after = books.parse_sort_key(sort, key)
        BookFilters(**bound)
    except (InvalidCursor, ArithmeticError, ValueError, KeyError, TypeError):
        raise ValidationError(INVALID_CURSOR, "cursor") from None
    if any(bound.get(k) != v for k, v in _only(filters, FILTER_KEYS).items()):
        raise ValidationError("The cursor was made for other filters.", "cursor")
    if "sort" in query and query["sort"] != sort:
        raise ValidationError("The cursor was made for another sort.", "cursor")
    if _only(filters, ("owner_id",)) != _only(bound, ("owner_id",)):
        raise ValidationError("The cursor was made for another list.", "cursor")
    return sort, bound, after


def _only(mapping: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k in keys}


_KINDS: dict[str, Callable[[Reader, CatalogRead], Payload]] = {
    BOOKS_LIST: _listing, BOOK: _book, POPULAR: _popular, SEARCH: _search,
}  # fmt: skip
