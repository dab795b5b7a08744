"""Full-text search over titles and authors."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from api.http import load_query, page_envelope, public_json
from shared.db import db
from shared.schemas.book import books_schema, search_query_schema
from shared.services import books

bp = Blueprint("search", __name__, url_prefix="/api/search")


@bp.get("")
def search() -> ResponseReturnValue:
    """Books whose title or author match every word of ``q``, best match first."""
    query = load_query(search_query_schema)
    result = books.search_books(
        db.session, q=query["q"], page=query["page"], per_page=query["per_page"]
    )
    body, link = page_envelope(
        books_schema.dump(result.items),
        total=result.total, page=query["page"], per_page=query["per_page"],
    )  # fmt: skip
    return public_json(body, headers={"Link": link})
