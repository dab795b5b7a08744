"""Book input and output schemas, and the query of a book listing."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from shared.models import GENRES
from shared.schemas.fields import TIMESTAMP, Isbn, Money, StrictInteger, TrimmedString

SORT_FIELDS = ("id", "title", "published_year", "price", "created_at")
SORT_CHOICES = SORT_FIELDS + tuple(f"-{f}" for f in SORT_FIELDS)
MAX_PER_PAGE = 100
# Beyond any real catalog, and within the integers that JavaScript clients hold exactly.
MAX_PAGE = 2**31 - 1
MAX_PRICE = Decimal(1_000_000)
WORD = re.compile(r"[^\W_]+")


def search_words(q: str) -> list[str]:
    """The words of a query (runs of letters and digits), as the SQLite index splits them.

    They keep their case: each engine folds case itself, as it did for the indexed text
    (PostgreSQL in a ``C`` locale folds only ASCII, and Python's ``lower()`` would then
    turn ``ÉMILE`` into a word the index does not hold).
    """
    return WORD.findall(q)


class BookCreateSchema(Schema):
    """A new book, or the full replacement of one (PUT)."""

    title = TrimmedString(required=True, validate=validate.Length(1, 200))
    author = TrimmedString(required=True, validate=validate.Length(1, 100))
    isbn = Isbn(load_default=None, allow_none=True)
    published_year = StrictInteger(
        load_default=None, allow_none=True, validate=validate.Range(1000, 2100)
    )
    genre = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(GENRES))
    # Two validators, so that a negative price reads "Must be greater than or equal to 0."
    # The upper bound keeps cents inside PostgreSQL's integer column.
    price = Money(
        load_default=None,
        allow_none=True,
        validate=[validate.Range(min=Decimal(0)), validate.Range(max=MAX_PRICE)],
    )


class BookPatchSchema(BookCreateSchema):
    """A partial change: only the fields sent are validated and applied.

    Load it with ``partial=True``; ``load_default`` does not apply to partial loads.
    """


class BookSchema(Schema):
    """A book as clients see it."""

    id = fields.Integer()
    title = fields.String()
    author = fields.String()
    isbn = fields.String(allow_none=True)
    published_year = fields.Integer(allow_none=True)
    genre = fields.String(allow_none=True)
    price = Money(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime(format=TIMESTAMP)
    updated_at = fields.AwareDateTime(format=TIMESTAMP)
    links = fields.Method("_links")

    def _links(self, book: Any) -> dict[str, str]:
        return {"self": f"/api/books/{book.id}"}


class BookFiltersSchema(Schema):
    """The filters of a book listing, which a cursor also carries."""

    class Meta:
        unknown = "exclude"

    genre = fields.String(validate=validate.OneOf(GENRES))
    author = TrimmedString(validate=validate.Length(1, 100))
    year_from = fields.Integer(validate=validate.Range(1000, 2100))
    year_to = fields.Integer(validate=validate.Range(1000, 2100))
    q = TrimmedString(validate=validate.Length(1, 200))

    @validates_schema
    def _check(self, data: dict[str, Any], **_: Any) -> None:
        if "q" in data and not search_words(data["q"]):
            raise ValidationError("Must contain at least one letter or digit.", "q")
        if data.get("year_from", 0) > data.get("year_to", 9999):
            raise ValidationError("Must not be greater than year_to.", "year_from")


class BookListQuerySchema(BookFiltersSchema):
    """``GET /api/books``: filters, sort, and either page or cursor mode."""

    sort = fields.String(validate=validate.OneOf(SORT_CHOICES, error="Must be one of: {choices}."))
    page = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(validate=validate.Range(min=1))
    # A cursor repeats its filters: 300 characters of ``q`` and ``author`` JSON-escaped
    # as surrogate pairs come to about 5000 characters of base64.
    cursor = fields.String(
        validate=validate.Length(1, 8000),
        # Documents what this server makes (itsdangerous' URL-safe text); checked by signature.
        metadata={
            "pattern": r"^[A-Za-z0-9_.-]+$",
            "description": "The previous page's next_cursor.",
        },
    )
    limit = fields.Integer(validate=validate.Range(min=1))

    @validates_schema
    def _modes(self, data: dict[str, Any], **_: Any) -> None:
        if "cursor" in data and ("page" in data or "per_page" in data):
            raise ValidationError("Use either page/per_page or cursor/limit, not both.", "page")
        if "limit" in data and ("page" in data or "per_page" in data):
            raise ValidationError("Use either page/per_page or cursor/limit, not both.", "page")

    @post_load
    def _clamp(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        for key in ("per_page", "limit"):
            if key in data:
                data[key] = min(data[key], MAX_PER_PAGE)
        return data


class SearchQuerySchema(Schema):
    """``GET /api/search``."""

    class Meta:
        unknown = "exclude"

    q = TrimmedString(required=True, validate=validate.Length(1, 200))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1))

    @validates_schema
    def _check(self, data: dict[str, Any], **_: Any) -> None:
        if "q" in data and not search_words(data["q"]):
            raise ValidationError("Must contain at least one letter or digit.", "q")

    @post_load
    def _clamp(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["per_page"] = min(data["per_page"], MAX_PER_PAGE)
        return data


book_create_schema = BookCreateSchema()
book_patch_schema = BookPatchSchema()
book_schema = BookSchema()
books_schema = BookSchema(many=True)
book_list_query_schema = BookListQuerySchema()
search_query_schema = SearchQuerySchema()
