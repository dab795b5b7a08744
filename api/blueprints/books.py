"""The catalog: list (page or cursor), read, create, replace, patch, delete."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint, url_for
from flask.typing import ResponseReturnValue

from api.auth import token_required
from api.cache import catalog_changed, catalog_read
from api.extensions import folio
from api.http import load_json, no_content
from shared.db import db
from shared.models import User
from shared.schemas.book import book_create_schema, book_patch_schema, book_schema
from shared.services import books, popular
from shared.services.catalog_reads import BOOK, BOOKS_LIST, POPULAR

bp = Blueprint("books", __name__, url_prefix="/api/books")


@bp.get("")
def list_books() -> ResponseReturnValue:
    """The catalog, filtered and sorted, in page mode or cursor mode."""
    return catalog_read(BOOKS_LIST)


@bp.get("/popular")
def popular_books() -> ResponseReturnValue:
    """The most viewed books, with their views (counted within ``POPULAR_FLUSH_INTERVAL``)."""
    return catalog_read(POPULAR)


@bp.get("/<id:book_id>")
def get_book(book_id: int) -> ResponseReturnValue:
    """One book; each ``200`` counts as a view (a ``304`` does not)."""
    response = catalog_read(BOOK, book_id=book_id)
    if response.status_code == HTTPStatus.OK:
        popular.record_view(folio().redis, book_id)
    return response


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
