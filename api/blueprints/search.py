"""Full-text search over titles and authors."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from api.cache import catalog_read
from shared.services.catalog_reads import SEARCH

bp = Blueprint("search", __name__, url_prefix="/api/search")


@bp.get("")
def search() -> ResponseReturnValue:
    """Books whose title or author match every word of ``q``, best match first."""
    return catalog_read(SEARCH)
