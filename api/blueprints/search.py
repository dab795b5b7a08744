"""Full-text search over titles and authors."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from api.cache import cached_payload
from api.http import load_query, page_envelope, public_json
from shared.db import db
from shared.schemas.book import books_schema, search_query_schema
from shared.services import books

bp = Blueprint("search", __name__, url_prefix="/api/search")


@bp.get("")
def search() -> ResponseReturnValue:
    """Books whose title or author match every word of ``q``, best match first."""
    body, headers = cached_payload(_search)
    return public_json(body, headers=headers)


def _search() -> tuple[Any, dict[str, str]]:
    query = load_query(search_query_schema)
    result = books.search_books(
        db.session, q=query["q"], page=query["page"], per_page=query["per_page"]
    )
    body, link = page_envelope(
        books_schema.dump(result.items),
        total=result.total, page=query["page"], per_page=query["per_page"],
    )  # fmt: skip
    return body, {"Link": link}
