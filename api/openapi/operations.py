"""What the OpenAPI document says of each endpoint, beyond what its URL rule says.

One entry per Flask endpoint. The path, its parameters and the summary (the view's
docstring) come from the app itself; an entry adds the request schema (the marshmallow
schema the view loads), the query schema, the replies, who may call it and the errors
only its service can raise. Errors that follow from the rest are added by the builder:
400 for a body or query, 401/403 for ``auth``, 404 for path parameters, 413/415 for a
body, 429 for a rate-limited route, 500 always, 503 when it touches a dependency.

To document a new route: give its view a docstring (first line: the summary), then add
an entry under its endpoint name (``blueprint.function``) with the schema the view
loads (``body``/``query``), what it answers (``replies``), ``auth`` and the statuses
its service raises (``errors``). A body the view builds as a dict gets a shape in
``shapes.py``. ``tests/functional/test_openapi.py`` names any endpoint left out, and
the schemathesis test (``test_openapi_conformance.py``) fails on any answer that the
entry does not describe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from marshmallow import Schema

from api.openapi import shapes
from shared.schemas import admin as admin_schemas
from shared.schemas.book import (
    BookCreateSchema,
    BookListQuerySchema,
    BookPatchSchema,
    BookSchema,
    SearchQuerySchema,
)
from shared.schemas.job import (
    CsvImportQuerySchema,
    JobListQuerySchema,
    JobSchema,
    JobWaitQuerySchema,
)
from shared.schemas.user import (
    LoginSchema,
    LogoutSchema,
    RefreshSchema,
    RegisterSchema,
    TokenPairSchema,
    UserSchema,
    UserUpdateSchema,
)

JSON = "application/json"
PROBLEM = "application/problem+json"
SchemaRef = type[Schema] | Schema | str | dict[str, Any]  # a str names a component
# PATCH loads the create schema's fields with ``partial=True``: its own component.
BOOK_PATCH = BookPatchSchema(partial=True)
JOB_SUBMIT = "JobSubmit"  # one variant per job type, built from shared.job_types
CSV_BODY = {
    "type": "string",
    "description": "CSV with a header row of book field names (title, author, isbn, "
    "published_year, genre, price); one book per row.",
    "example": "title,author,isbn,published_year,genre,price\n"
    "Dune,Frank Herbert,9780441172719,1965,Fiction,9.99\n",
}


@dataclass(frozen=True)
class Reply:
    """One documented answer: its body per media type and its headers."""

    description: str
    content: Mapping[str, SchemaRef] = field(default_factory=dict)
    headers: tuple[str, ...] = ()  # always sent
    optional_headers: tuple[str, ...] = ()  # sent in some states only


@dataclass(frozen=True)
class Operation:
    tag: str
    replies: Mapping[int, Reply]
    auth: Literal["user", "admin"] | None = None
    body: Mapping[str, SchemaRef] = field(default_factory=dict)  # media type -> schema
    body_required: bool = True
    query: type[Schema] | None = None
    headers: tuple[str, ...] = ()  # request headers besides Authorization and X-Request-ID
    errors: tuple[int, ...] = ()  # raised by the service (403 owner-only, 409, 410, 422)
    limited: bool = True  # counted by the rate limiter
    dependencies: bool = True  # needs the database or Redis (else no 503)
    notes: str = ""  # added to the view's docstring
    summary: str = ""  # instead of the docstring's first line (a view that has none)


def ok(
    schema: SchemaRef, description: str = "OK", *, headers: tuple[str, ...] = (),
    optional_headers: tuple[str, ...] = (), media: str = JSON,
) -> Reply:  # fmt: skip
    return Reply(description, {media: schema}, headers, optional_headers)


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: SchemaRef) -> dict[str, SchemaRef]:
    return {JSON: schema}


NO_CONTENT = Reply("Done; no body.")
NOT_MODIFIED = Reply("Not modified: `If-None-Match` holds the current ETag.", headers=("ETag",))
CATALOG_PAGE = ok(
    {"oneOf": [ref("BookPage"), ref("BookCursorPage")]},
    "Page mode by default; cursor mode when `cursor` or `limit` is given.",
    headers=("ETag",),
    optional_headers=("Link",),
)
CATALOG_NOTES = (
    "Page mode (`page`, `per_page`: 1-100, above 100 is clamped) answers a `BookPage` and "
    "a `Link` header (first, last, next, prev). Cursor mode (`cursor` and/or `limit`) "
    "answers a `BookCursorPage`; the cursor is opaque and signed and carries its filters "
    "and sort: repeat them unchanged or leave them out. Mixing the modes is a 400."
)
JOB_ACCEPTED = ok(
    JobSchema,
    "Accepted: the job is queued; poll `Location`. A replay of an `Idempotency-Key` "
    "answers the original job with `Idempotent-Replayed: true`.",
    headers=("Location", "Retry-After"),
    optional_headers=("Idempotent-Replayed",),
)
JOB = ok(JobSchema, headers=("ETag",), optional_headers=("Retry-After",))


def _catalog_list(tag: str) -> Operation:
    """A cached list of books in page or cursor mode."""
    return Operation(
        tag,
        {200: CATALOG_PAGE, 304: NOT_MODIFIED},
        query=BookListQuerySchema,
        headers=("If-None-Match",),
        notes=CATALOG_NOTES,
    )


OPERATIONS: dict[str, Operation] = {
    # Operations (API.md section 7)
    "health.health": Operation(
        "operations", {200: ok(shapes.HealthSchema)}, limited=False, dependencies=False
    ),
    "health.ready": Operation(
        "operations",
        {
            200: ok(shapes.ReadySchema, "Ready, or degraded without workers."),
            503: Reply(
                "Not ready: `detail` names the failed dependency.",
                {PROBLEM: "NotReadyProblem"},
                headers=("Retry-After",),
            ),
        },
        limited=False,
    ),
    "metrics.metrics": Operation(
        "operations",
        {200: ok({"type": "string"}, "Prometheus text format.", media="text/plain")},
        limited=False,
        dependencies=False,
    ),
    "docs.openapi": Operation(
        "operations",
        {200: ok({"type": "object"}, "This document.", headers=("ETag",)), 304: NOT_MODIFIED},
        headers=("If-None-Match",),
        limited=False,
        dependencies=False,
    ),
    "docs_ui.index": Operation(
        "operations",
        {200: ok({"type": "string"}, "Swagger UI.", media="text/html")},
        limited=False,
        dependencies=False,
        summary="Interactive documentation of this API; works offline.",
    ),
    # Authentication
    "auth.register": Operation(
        "auth",
        {201: ok(UserSchema, "Created.", headers=("Location",))},
        body=json_body(RegisterSchema),
        errors=(409,),
    ),
    "auth.login": Operation(
        "auth",
        {200: ok(TokenPairSchema)},
        body=json_body(LoginSchema),
        errors=(401,),
        notes="Wrong email and wrong password give the same 401.",
    ),
    "auth.refresh": Operation(
        "auth", {200: ok(TokenPairSchema)}, body=json_body(RefreshSchema), errors=(401,)
    ),
    "auth.logout": Operation(
        "auth",
        {204: NO_CONTENT},
        auth="user",
        body=json_body(LogoutSchema),
        body_required=False,
    ),
    # Users
    "users.me": Operation("users", {200: ok(UserSchema)}, auth="user"),
    "users.get_user": Operation("users", {200: ok(UserSchema)}, auth="user", errors=(403,)),
    "users.update_user": Operation(
        "users", {200: ok(UserSchema)}, auth="admin", body=json_body(UserUpdateSchema)
    ),
    "users.delete_user": Operation("users", {204: NO_CONTENT}, auth="admin"),
    "users.user_books": _catalog_list("users"),
    # Books
    "books.list_books": _catalog_list("books"),
    "books.popular_books": Operation(
        "books",
        {200: ok(shapes.PopularBooksSchema, headers=("ETag",)), 304: NOT_MODIFIED},
        headers=("If-None-Match",),
    ),
    "books.get_book": Operation(
        "books",
        {200: ok(BookSchema, headers=("ETag",)), 304: NOT_MODIFIED},
        headers=("If-None-Match",),
    ),
    "books.create_book": Operation(
        "books",
        {201: ok(BookSchema, "Created.", headers=("Location",))},
        auth="user",
        body=json_body(BookCreateSchema),
        errors=(409,),
    ),
    "books.replace_book": Operation(
        "books",
        {200: ok(BookSchema)},
        auth="user",
        body=json_body(BookCreateSchema),
        errors=(403, 409),
    ),
    "books.patch_book": Operation(
        "books",
        {200: ok(BookSchema)},
        auth="user",
        body=json_body(BOOK_PATCH),
        errors=(403, 409),
    ),
    "books.delete_book": Operation("books", {204: NO_CONTENT}, auth="user", errors=(403,)),
    "imports.import_csv": Operation(
        "jobs",
        {202: JOB_ACCEPTED},
        auth="user",
        body={"text/csv": CSV_BODY},
        query=CsvImportQuerySchema,
        headers=("Idempotency-Key",),
        errors=(409, 422),
        notes="The same answers as `POST /api/jobs` with a `books.import` job.",
    ),
    "search.search": Operation(
        "books",
        {200: ok("BookPage", headers=("ETag", "Link")), 304: NOT_MODIFIED},
        query=SearchQuerySchema,
        headers=("If-None-Match",),
    ),
    # Jobs
    "jobs.submit_job": Operation(
        "jobs",
        {202: JOB_ACCEPTED},
        auth="user",
        body=json_body(JOB_SUBMIT),
        headers=("Idempotency-Key",),
        errors=(403, 409, 422),
        notes="`params` depend on `type` (one variant each). 403: an admin-only type. "
        "429: a rate limit, or too many active jobs for your tier "
        "(`/problems/too-many-active-jobs`).",
    ),
    "jobs.list_jobs": Operation(
        "jobs",
        {200: ok(shapes.JobPageSchema, headers=("ETag", "Link")), 304: NOT_MODIFIED},
        auth="user",
        query=JobListQuerySchema,
        headers=("If-None-Match",),
        errors=(403,),
        notes="`all=true` (everyone's jobs) is for admins.",
    ),
    "jobs.get_job": Operation(
        "jobs",
        {200: JOB, 304: NOT_MODIFIED},
        auth="user",
        query=JobWaitQuerySchema,
        headers=("If-None-Match",),
        notes="`Retry-After` while the job is not terminal. Another user's job is a 404.",
    ),
    "jobs.cancel_job": Operation(
        "jobs",
        {202: ok(JobSchema, "Accepted.", headers=("ETag",), optional_headers=("Retry-After",))},
        auth="user",
        errors=(409,),
    ),
    "jobs.retry_job": Operation("jobs", {202: JOB_ACCEPTED}, auth="user", errors=(409,)),
    "jobs.delete_job": Operation("jobs", {204: NO_CONTENT}, auth="user", errors=(409,)),
    "jobs.job_result": Operation(
        "jobs",
        {
            200: Reply(
                "An export's file (`Content-Disposition: attachment`), or another job's result "
                "as JSON.",
                {
                    "text/csv": {"type": "string"},
                    "application/x-ndjson": {"type": "string"},
                    JSON: {},
                },
                optional_headers=("ETag", "Content-Disposition"),
            ),
            304: NOT_MODIFIED,
        },
        auth="user",
        headers=("If-None-Match",),
        errors=(409, 410),
        notes="409 while the job has not succeeded; 410 once its result expired.",
    ),
    # Admin
    "admin.clear_cache": Operation("admin", {200: ok(shapes.CacheClearedSchema)}, auth="admin"),
    "admin.queues": Operation("admin", {200: ok(admin_schemas.QueuesSchema)}, auth="admin"),
    "admin.workers": Operation("admin", {200: ok(admin_schemas.WorkersSchema)}, auth="admin"),
    "admin.job_stats": Operation("admin", {200: ok(admin_schemas.JobStatsSchema)}, auth="admin"),
}

# Routes that are not part of the API: Flask's static files (none are shipped), and the
# docs page's own assets (its page is documented as ``docs_ui.index``).
NOT_DOCUMENTED = {"static", "docs_ui.show"}
