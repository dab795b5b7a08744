"""The catalog: list (page or cursor), read, create, replace, patch, delete."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, url_for
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError

from api.auth import token_required
from api.cache import cached_payload, catalog_changed
from api.extensions import folio
from api.http import load_json, load_query, no_content, page_envelope, public_json, url_only
from shared.cursor import INVALID_CURSOR, InvalidCursor
from shared.db import db
from shared.models import User
from shared.schemas.book import (
    book_create_schema,
    book_list_query_schema,
    book_patch_schema,
    book_schema,
    books_schema,
)
from shared.services import books
from shared.services.books import BookFilters

bp = Blueprint("books", __name__, url_prefix="/api/books")
FILTER_KEYS = ("genre", "author", "year_from", "year_to", "q")
DEFAULT_PAGE_SIZE = 20


@bp.get("")
def list_books() -> ResponseReturnValue:
    """The catalog, filtered and sorted, in page mode or cursor mode."""
    return book_listing()


@bp.get("/<id:book_id>")
def get_book(book_id: int) -> ResponseReturnValue:
    """One book."""
    body, headers = cached_payload(
        lambda: (book_schema.dump(books.get_book(db.session, book_id)), {})
    )
    return public_json(body, headers=headers)


@bp.post("")
@token_required
def create_book(current_user: User) -> ResponseReturnValue:
    """Add a book to the catalog."""
    data = load_json(book_create_schema)
    book = books.create_book(db.session, owner=current_user, data=data)
    db.session.commit()
    catalog_changed()
    location = url_for(".get_book", book_id=book.id)
    return book_schema.dump(book), HTTPStatus.CREATED, {"Location": location}


@bp.put("/<id:book_id>")
@token_required
def replace_book(book_id: int, current_user: User) -> ResponseReturnValue:
    """Replace every field of a book (owner or admin)."""
    return _update(book_id, current_user, partial=False)


@bp.patch("/<id:book_id>")
@token_required
def patch_book(book_id: int, current_user: User) -> ResponseReturnValue:
    """Change some fields of a book (owner or admin)."""
    return _update(book_id, current_user, partial=True)


def _update(book_id: int, actor: User, *, partial: bool) -> ResponseReturnValue:
    """404 and 403 come before the body is validated (400)."""
    book = books.editable_book(db.session, book_id=book_id, actor=actor)
    data = load_json(book_patch_schema if partial else book_create_schema, partial=partial)
    books.update_book(db.session, book, data)
    db.session.commit()
    catalog_changed()
    return book_schema.dump(book)


@bp.delete("/<id:book_id>")
@token_required
def delete_book(book_id: int, current_user: User) -> ResponseReturnValue:
    """Remove a book (owner or admin)."""
    books.delete_book(db.session, book_id=book_id, actor=current_user)
    db.session.commit()
    catalog_changed()
    return no_content()


def book_listing(**fixed: Any) -> ResponseReturnValue:
    """``GET /api/books`` and the lists built like it (``fixed`` filters, e.g. owner_id)."""
    body, headers = cached_payload(lambda: _listing(fixed))
    return public_json(body, headers=headers)


def _listing(fixed: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    query = load_query(book_list_query_schema)
    filters = {key: query[key] for key in FILTER_KEYS if key in query} | fixed
    if "cursor" in query or "limit" in query:
        return _cursor_page(query, filters)
    sort = query.get("sort", "id")
    page, per_page = query.get("page", 1), query.get("per_page", DEFAULT_PAGE_SIZE)
    result = books.list_books(
        db.session, filters=BookFilters(**filters), sort=sort, page=page, per_page=per_page
    )
    body, link = page_envelope(
        books_schema.dump(result.items), total=result.total, page=page, per_page=per_page
    )
    return body, {"Link": link}


def _cursor_page(query: dict[str, Any], filters: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    sort, after = query.get("sort", "id"), None
    if "cursor" in query:
        sort, filters, after = _resume(query, filters)
    limit = query.get("limit", DEFAULT_PAGE_SIZE)
    result = books.list_books_after(
        db.session, filters=BookFilters(**filters), sort=sort, after=after, limit=limit
    )
    next_cursor = None
    headers = {}
    if result.has_more and result.last_key is not None:
        next_cursor = folio().cursors.encode(sort=sort, filters=filters, key=result.last_key)
        # The cursor carries the filters and sort: repeating them could only make the
        # link longer (past a server's request-line limit, with long non-ASCII filters).
        headers["Link"] = f'<{url_only(cursor=next_cursor, limit=limit)}>; rel="next"'
    body = {"items": books_schema.dump(result.items), "has_more": result.has_more,
            "next_cursor": next_cursor}  # fmt: skip
    return body, headers


def _resume(query: dict[str, Any], filters: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """Sort, filters and position of a cursor that must match the request's own.

    Each filter (and the sort) may be left out, and then the cursor's applies, or repeated
    with the cursor's value; any other value, or a filter the cursor was made without,
    is a 400.
    """
    try:
        sort, bound, key = folio().cursors.decode(query["cursor"])
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
