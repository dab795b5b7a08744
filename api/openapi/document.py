"""The OpenAPI 3.1 document, built from the app's URL rules and the marshmallow schemas.

Paths, methods and path parameters come from ``app.url_map``; summaries from the views'
docstrings; request and response bodies from the schemas that validate and dump them
(through apispec's marshmallow plugin); the rest from ``operations.OPERATIONS``. Built
once per app, on first use: the routes are fixed by then.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections import defaultdict
from importlib.metadata import version
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema, fields
from werkzeug.http import generate_etag
from werkzeug.routing import Rule, UnicodeConverter, UUIDConverter

from api.http import IdConverter
from api.openapi import shapes
from api.openapi.operations import (
    BOOK_PATCH,
    JOB_SUBMIT,
    NOT_DOCUMENTED,
    OPERATIONS,
    PROBLEM,
    Operation,
    Reply,
    SchemaRef,
    ref,
)
from shared.job_types import JOB_TYPES
from shared.schemas.book import BookCreateSchema
from shared.schemas.job import JobCreateSchema

log = logging.getLogger(__name__)
METHODS = ("get", "put", "post", "patch", "delete")  # HEAD and OPTIONS are implied
# Resources as their dump schemas write them: every field, always (``null`` when empty).
DUMPED = ("Book", "PopularBook", "User", "Job", "TokenPair")
_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
DESCRIPTION = """\
The Folio books catalog. Every error is an RFC 9457 problem (`application/problem+json`)
with a `request_id`; every response carries `X-Request-ID`. Protected operations take
`Authorization: Bearer <access token>` (`POST /api/auth/login`). Rate-limited operations
answer `X-RateLimit-*`, `RateLimit` and `RateLimit-Policy` headers, and 429 with
`Retry-After` past a limit. Expensive work runs as jobs (`POST /api/jobs`, 202).
"""
HEADERS: dict[str, tuple[dict[str, Any], str]] = {
    "X-Request-ID": ({"type": "string"}, "This request's id: the client's own when it is "
                     "1-64 characters of `[A-Za-z0-9._-]`, else a new one."),
    "Location": ({"type": "string"}, "Where the created resource (or the job) is."),
    "Retry-After": ({"type": "integer", "minimum": 0}, "Seconds to wait before polling "
                    "or trying again."),
    "ETag": ({"type": "string"}, "A strong validator; send it back in `If-None-Match`."),
    "Link": ({"type": "string"}, "RFC 8288 links to other pages (`first`, `last`, `next`, "
             "`prev`)."),
    "Idempotent-Replayed": ({"type": "string", "enum": ["true"]}, "The answer is a replay "
                            "of the first request with this `Idempotency-Key`."),
    "WWW-Authenticate": ({"type": "string"}, "The `Bearer` challenge."),
    "Content-Disposition": ({"type": "string"}, "`attachment` with a file name."),
    "X-RateLimit-Limit": ({"type": "integer"}, "Requests allowed in the window of the limit "
                          "closest to running out."),
    "X-RateLimit-Remaining": ({"type": "integer"}, "Requests left in that window."),
    "X-RateLimit-Reset": ({"type": "integer"}, "When that window resets (Unix seconds)."),
    "RateLimit-Policy": ({"type": "string"}, "Every limit counted "
                         "(draft-ietf-httpapi-ratelimit-headers-10)."),
    "RateLimit": ({"type": "string"}, "The limit closest to running out "
                  "(draft-ietf-httpapi-ratelimit-headers-10)."),
}  # fmt: skip
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                      "RateLimit-Policy", "RateLimit")  # fmt: skip
# Request headers, as reusable parameters.
PARAMETERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"schema": {"type": "string"},
                     "description": "Echoed back when it is 1-64 characters of `[A-Za-z0-9._-]`."},
    "Idempotency-Key": {
        # 1-255 printable ASCII characters; HTTP drops surrounding spaces on the way.
        "schema": {"type": "string", "pattern": "^[!-~]([ -~]{0,253}[!-~])?$"},
        "description": "The same key with the same request within 24 hours replays the "
        "first answer; with a different request it is a 422.",
    },
    "If-None-Match": {"schema": {"type": "string"},
                      "description": "An ETag from an earlier answer: 304 while it is current."},
}  # fmt: skip
# status -> (component name, description, headers always sent, headers sometimes sent)
ERRORS: dict[int, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    400: ("BadRequest", "Malformed JSON, or invalid fields or query parameters "
          "(`errors`: field -> messages).", (), ()),
    401: ("Unauthorized", "Missing, malformed, expired or revoked bearer token.",
          ("WWW-Authenticate",), ()),
    403: ("Forbidden", "Authenticated, but not allowed to do this.", (), ()),
    404: ("NotFound", "No such resource (another user's job is one too).", (), ()),
    409: ("Conflict", "Conflicts with the current state: a duplicate, the job's status, "
          "or an `Idempotency-Key` still in use (with `Retry-After`).", (), ("Retry-After",)),
    410: ("Gone", "The job's result has expired.", (), ()),
    413: ("PayloadTooLarge", "The body is larger than `MAX_CONTENT_LENGTH`.", (), ()),
    415: ("UnsupportedMediaType", "The body's `Content-Type` is not the one this operation "
          "takes.", (), ()),
    422: ("IdempotencyKeyReused", "The `Idempotency-Key` was used for a different request.",
          (), ()),
    429: ("TooManyRequests", "A rate limit (`retry_after`, `limit`) or the active jobs "
          "quota (`/problems/too-many-active-jobs`).", ("Retry-After",), ()),
    500: ("InternalError", "Unexpected; logged under the request id.", (), ()),
    503: ("ServiceUnavailable", "A dependency (database, Redis, broker) is unavailable.",
          ("Retry-After",), ()),
}  # fmt: skip


def openapi_document(app: Flask) -> tuple[str, str]:
    """The document as JSON text, and its ETag: built on first use, then kept."""
    cached: tuple[str, str] | None = app.extensions.get("folio_openapi")
    if cached is None:
        text = app.json.dumps(build_document(app))  # exact decimals in validators' bounds
        cached = app.extensions["folio_openapi"] = (text, generate_etag(text.encode()))
    return cached


def undocumented_endpoints(app: Flask) -> list[str]:
    """Endpoints of the app that have no entry in ``OPERATIONS`` (and should)."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    return sorted(endpoints - set(OPERATIONS) - NOT_DOCUMENTED)


def build_document(app: Flask) -> dict[str, Any]:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="Folio", version=version("folio"), openapi_version="3.1.0", plugins=[plugin],
        info={"description": DESCRIPTION},
    )  # fmt: skip
    plugin.converter.add_attribute_function(_exact_values)  # type: ignore[union-attr]
    _components(spec, plugin)
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    parameters: dict[str, list[dict[str, Any]]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in NOT_DOCUMENTED:
            continue
        path = _RULE_ARGUMENT.sub(r"{\1}", rule.rule)
        parameters[path] = _path_parameters(rule)
        for method in METHODS:
            if method.upper() in (rule.methods or ()):
                paths[path][method] = _operation(app, rule)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations, parameters=parameters[path])
    for name in DUMPED:
        schema = spec.components.schemas.get(name)
        if schema is not None:
            schema["required"] = list(schema["properties"])
    return spec.to_dict()


def _components(spec: APISpec, plugin: MarshmallowPlugin) -> None:
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for name, extra in PARAMETERS.items():
        spec.components.parameter(name, "header", {"name": name, **extra})
    for name, schema in (
        ("Problem", shapes.ProblemSchema), ("NotReadyProblem", shapes.NotReadyProblemSchema),
        ("BookPage", shapes.BookPageSchema), ("BookCursorPage", shapes.BookCursorPageSchema),
        ("BookCreate", BookCreateSchema), ("BookPatch", BOOK_PATCH),
    ):  # fmt: skip
        spec.components.schema(name, schema=schema)
    spec.components.schema(JOB_SUBMIT, _job_submit(spec, plugin))
    for name, description, always, sometimes in ERRORS.values():
        reply = Reply(description, {PROBLEM: "Problem"}, always, sometimes + RATE_LIMIT_HEADERS)
        spec.components.response(name, _reply(reply))


def _job_submit(spec: APISpec, plugin: MarshmallowPlugin) -> dict[str, Any]:
    """``POST /api/jobs``: ``JobCreateSchema``'s envelope, one variant per job type."""
    envelope = plugin.converter.schema2jsonschema(JobCreateSchema())  # type: ignore[union-attr]
    variants = []
    for job_type in JOB_TYPES.values():
        params = _schema_name(job_type.params_schema)
        if params not in spec.components.schemas:
            spec.components.schema(params, schema=job_type.params_schema)
        variant = {**envelope, "title": job_type.name, "properties": {
            **envelope["properties"],
            "type": {"type": "string", "enum": [job_type.name]},
            "params": ref(params),
        }}  # fmt: skip
        if spec.components.schemas[params].get("required"):
            variant["required"] = [*envelope.get("required", ()), "params"]
        if job_type.admin_only:
            variant["description"] = "Admins only."
        variants.append(variant)
    # Rows are checked as books by the worker (a bad row fails or is skipped: `on_error`).
    books = spec.components.schemas["ImportParams"]["properties"]["books"]
    books["items"] = ref("BookCreate")
    return {"oneOf": variants, "description": "A job type and its params."}


def _operation(app: Flask, rule: Rule) -> dict[str, Any]:
    # Docstrings quote code reST-style; the document's descriptions are Markdown.
    docstring = (inspect.getdoc(app.view_functions[rule.endpoint]) or "").replace("``", "`")
    summary, _, description = docstring.partition("\n")
    op = OPERATIONS.get(rule.endpoint)
    if op is None:  # the test suite names it; the document still lists the route
        log.warning("no OpenAPI entry for endpoint %s", rule.endpoint)
        return {"summary": summary, "responses": {"default": {"description": "Undocumented."}}}
    operation: dict[str, Any] = {
        "operationId": rule.endpoint,
        "tags": [op.tag],
        "summary": op.summary or summary,
        "parameters": _parameters(op),
        "responses": _responses(op, rule),
    }
    notes = "\n\n".join(text for text in (description.strip(), op.notes) if text)
    if notes:
        operation["description"] = notes
    if op.body:
        operation["requestBody"] = {"required": op.body_required, "content": {
            media: {"schema": _schema(schema)} for media, schema in op.body.items()
        }}  # fmt: skip
    if op.auth:
        operation["security"] = [{"bearerAuth": []}]
    return operation


def _parameters(op: Operation) -> list[Any]:
    found: list[Any] = ["X-Request-ID", *op.headers]
    if op.query is not None:
        found.append({"in": "query", "schema": op.query})
    return found


def _responses(op: Operation, rule: Rule) -> dict[str, Any]:
    """The operation's replies, then every error it can answer, in status order."""
    limits = RATE_LIMIT_HEADERS if op.limited else ()
    responses = {str(status): _reply(reply, limits) for status, reply in sorted(op.replies.items())}
    errors = set(op.errors) | {500}
    errors |= {400} if op.body or op.query else set()
    errors |= {401} if op.auth else set()
    errors |= {403} if op.auth == "admin" else set()
    errors |= {404} if rule.arguments else set()
    errors |= {413, 415} if op.body else set()
    errors |= {429} if op.limited else set()
    errors |= {503} if op.dependencies else set()
    for status in sorted(errors - set(op.replies)):
        responses[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    return responses


def _reply(reply: Reply, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    headers = {name: _header(name, required=True) for name in ("X-Request-ID", *reply.headers)}
    for name in (*reply.optional_headers, *optional):
        headers.setdefault(name, _header(name, required=False))
    answer: dict[str, Any] = {"description": reply.description, "headers": headers}
    if reply.content:
        answer["content"] = {
            media: {"schema": _schema(schema)} for media, schema in reply.content.items()
        }
    return answer


def _header(name: str, *, required: bool) -> dict[str, Any]:
    schema, description = HEADERS[name]
    return {"description": description, "required": required, "schema": schema}


def _schema(schema: SchemaRef) -> Any:
    """A component's name as a reference; marshmallow schemas are left to the plugin."""
    return ref(schema) if isinstance(schema, str) else schema


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    """Plain path parameters, typed by the rule's converters (a new converter fails loudly)."""
    found = []
    for name, converter in rule._converters.items():  # werkzeug has no public map
        if isinstance(converter, IdConverter):
            schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 9_999_999_999}
        elif isinstance(converter, UUIDConverter):
            schema = {"type": "string", "format": "uuid"}
        elif type(converter) is UnicodeConverter:
            schema = {"type": "string"}
        else:
            raise TypeError(f"no OpenAPI type for the converter of <{name}> in {rule.rule}")
        found.append({"name": name, "in": "path", "required": True, "schema": schema})
    return found


def _schema_name(schema: type[Schema] | Schema) -> str:
    """``BookCreateSchema`` -> ``BookCreate``; a schema is one component whatever its options
    (a ``many=True`` instance is an array of it); the patch schema is registered apart."""
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema")


def _exact_values(
    self: Any,  # noqa: ARG001 - apispec binds it to its converter
    field: fields.Field,
    ret: dict[str, Any],
    **_: Any,
) -> dict[str, Any]:
    """What apispec leaves vague: a ``Constant``'s one value, and our datetimes, whose
    explicit ``format`` (``...Z``) it writes as ``format: null``: RFC 3339 ``date-time``."""
    if isinstance(field, fields.Constant):
        return {"enum": [field.constant]}
    if isinstance(field, fields.DateTime) and ret.get("format", "date-time") is None:
        if ret.get("pattern", "") is None:
            del ret["pattern"]
        return {"format": "date-time"}
    return {}
