"""Shapes of the bodies that views build as dicts, for the OpenAPI document only.

Requests and resources are documented from the schemas in ``shared.schemas`` that
validate and dump them; these describe what is built around them (pages, problems,
health, admin views). The schemathesis test checks live responses against them, so they
cannot drift from the code unnoticed.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from shared.schemas.book import BookSchema
from shared.schemas.job import JobSchema


class ProblemSchema(Schema):
    """An RFC 9457 problem (API.md section 1); some kinds add members of their own:
    ``errors`` (validation), ``retry_after`` and ``limit`` (429), ``checks`` (readiness)."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, metadata={"example": "/problems/validation-error"})
    title = fields.String(required=True)
    status = fields.Integer(required=True, validate=validate.Range(400, 599))
    detail = fields.String(required=True)
    instance = fields.String(required=True, metadata={"description": "The request's path."})
    request_id = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Validation problems only: field (dotted path) -> messages."},
    )


class PaginationSchema(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total_pages = fields.Integer(required=True)
    total_items = fields.Integer(required=True)
    has_next = fields.Boolean(required=True)
    has_prev = fields.Boolean(required=True)
    next_page = fields.Integer(required=True, allow_none=True)
    prev_page = fields.Integer(required=True, allow_none=True)


class PageLinksSchema(Schema):
    """The same links as the ``Link`` header, with every other query parameter kept."""

    self_ = fields.String(required=True, data_key="self")
    first = fields.String(required=True)
    last = fields.String(required=True)
    next = fields.String(required=True, allow_none=True)
    prev = fields.String(required=True, allow_none=True)


class BookPageSchema(Schema):
    """Page mode (``page``/``per_page``)."""

    items = fields.List(fields.Nested(BookSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)
    links = fields.Nested(PageLinksSchema, required=True)


class BookCursorPageSchema(Schema):
    """Cursor mode (``cursor``/``limit``): keyset pages, as cheap deep as shallow."""

    items = fields.List(fields.Nested(BookSchema), required=True)
    has_more = fields.Boolean(required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class PopularBookSchema(BookSchema):
    views = fields.Integer(required=True)


class PopularBooksSchema(Schema):
    items = fields.List(fields.Nested(PopularBookSchema), required=True)


class JobPageSchema(Schema):
    items = fields.List(fields.Nested(JobSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)
    links = fields.Nested(PageLinksSchema, required=True)


class HealthSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["healthy"]))


class ReadyChecksSchema(Schema):
    database = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    redis = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
    workers = fields.Integer(
        required=True, metadata={"description": "Workers seen in the last 60 seconds."}
    )


class ReadySchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ready", "degraded"]))
    checks = fields.Nested(ReadyChecksSchema, required=True)


class NotReadyProblemSchema(ProblemSchema):
    checks = fields.Nested(ReadyChecksSchema, required=True)


class CacheClearedSchema(Schema):
    removed = fields.Integer(required=True)
