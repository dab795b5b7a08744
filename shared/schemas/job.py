"""Job input (the envelope and each type's params), job output, and the job list query."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates

from shared.models import JobStatus
from shared.schemas.book import MAX_PAGE, MAX_PER_PAGE, BookFiltersSchema
from shared.schemas.fields import TIMESTAMP, TrimmedString

CONFLICT_POLICIES = ("fail", "skip", "update")
ERROR_POLICIES = ("abort", "skip")
EXPORT_FORMATS = ("csv", "jsonl")
REPORT_GROUPS = ("genre", "decade", "author")
CACHE_SCOPES = ("books", "all")
MAX_WAIT = 30


class JobCreateSchema(Schema):
    """``POST /api/jobs``: a type and its params (checked by the type's own schema)."""

    type = fields.String(required=True, validate=validate.Length(1, 40))
    params = fields.Dict(keys=fields.String(), load_default=dict)


class ImportParamsSchema(Schema):
    """The shape of an import; each row is validated with the book rules by the worker."""

    # Only "a list of objects" here: the worker validates every row with the book rules,
    # and deserializing each field twice would double the cost of a 100,000-row submit.
    books = fields.List(fields.Raw(), required=True, validate=validate.Length(min=1))
    on_conflict = fields.String(load_default="fail", validate=validate.OneOf(CONFLICT_POLICIES))
    on_error = fields.String(load_default="abort", validate=validate.OneOf(ERROR_POLICIES))

    @validates("books")
    def _objects(self, books: list[Any], **_: Any) -> None:
        errors = {i: ["Not a valid mapping type."] for i, row in enumerate(books)
                  if not isinstance(row, dict)}  # fmt: skip
        if errors:
            raise ValidationError(errors)


class ExportFiltersSchema(BookFiltersSchema):
    class Meta:
        unknown = RAISE


class ExportParamsSchema(Schema):
    format = fields.String(load_default="csv", validate=validate.OneOf(EXPORT_FORMATS))
    filters = fields.Nested(ExportFiltersSchema, load_default=dict)


class ReportParamsSchema(Schema):
    group_by = fields.List(fields.String(validate=validate.OneOf(REPORT_GROUPS)), load_default=list)

    @validates("group_by")
    def _unique(self, value: list[str], **_: Any) -> None:
        if len(set(value)) != len(value):
            raise ValidationError("Must not name a group twice.")


class CacheWarmParamsSchema(Schema):
    """``cache.warm`` takes no params (an unknown one is a 400, as everywhere)."""


class CacheInvalidateParamsSchema(Schema):
    scope = fields.String(required=True, validate=validate.OneOf(CACHE_SCOPES))


class CsvImportQuerySchema(Schema):
    """``POST /api/books/imports``: the import options travel in the query string."""

    on_conflict = fields.String(load_default="fail", validate=validate.OneOf(CONFLICT_POLICIES))
    on_error = fields.String(load_default="abort", validate=validate.OneOf(ERROR_POLICIES))


class JobWaitQuerySchema(Schema):
    """``GET /api/jobs/{id}?wait=N``: hold the answer up to N seconds (0-30)."""

    class Meta:
        unknown = "exclude"

    wait = fields.Float(load_default=0.0, allow_nan=False, validate=validate.Range(0, MAX_WAIT))


class JobListQuerySchema(Schema):
    class Meta:
        unknown = "exclude"

    status = fields.String(validate=validate.OneOf(JobStatus.ALL))
    type = TrimmedString(validate=validate.Length(1, 40))  # no NUL: PostgreSQL refuses it
    all = fields.Boolean(load_default=False)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1))

    @post_load
    def _clamp(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["per_page"] = min(data["per_page"], MAX_PER_PAGE)
        return data


class JobSchema(Schema):
    """A job as clients see it."""

    id = fields.String()
    type = fields.String()
    status = fields.String()
    params = fields.Raw()
    progress = fields.Raw()
    result = fields.Raw(allow_none=True)
    error = fields.Raw(allow_none=True)
    attempts = fields.Integer()
    cancel_requested = fields.Boolean()
    retry_of = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(format=TIMESTAMP)
    started_at = fields.AwareDateTime(format=TIMESTAMP, allow_none=True)
    finished_at = fields.AwareDateTime(format=TIMESTAMP, allow_none=True)
    expires_at = fields.AwareDateTime(format=TIMESTAMP, allow_none=True)
    links = fields.Method("_links")

    def _links(self, job: Any) -> dict[str, str]:
        base = f"/api/jobs/{job.id}"
        return {"self": base, "cancel": f"{base}/cancel", "result": f"{base}/result"}


job_create_schema = JobCreateSchema()
job_schema = JobSchema()
jobs_schema = JobSchema(many=True)
job_list_query_schema = JobListQuerySchema()
job_wait_query_schema = JobWaitQuerySchema()
csv_import_query_schema = CsvImportQuerySchema()
