"""Every error the service can produce, as RFC 9457 problem+json, in one place."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import redis
from flask import Flask, g, request
from marshmallow import ValidationError
from sqlalchemy import exc as sa
from werkzeug import exceptions as wz
from werkzeug.wrappers import Response

from api.http import MalformedJSON
from shared.errors import (
    AuthenticationFailed,
    Conflict,
    DependencyUnavailable,
    Gone,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    flatten_errors,
)

log = logging.getLogger(__name__)
_PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar without percent-encoding
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
RETRY_AFTER = {"Retry-After": "5"}
# A job slot frees when a job ends: nobody can say when, so suggest a short poll.
QUOTA_RETRY_AFTER = "5"
PROBLEM_JSON = "application/problem+json"
_SLUGS = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 406: "not-acceptable", 409: "conflict", 410: "gone",
    411: "length-required", 412: "precondition-failed", 413: "payload-too-large",
    414: "uri-too-long", 415: "unsupported-media-type", 422: "unprocessable-content",
    429: "too-many-requests", 431: "request-header-fields-too-large",
    500: "internal-error", 501: "not-implemented", 503: "service-unavailable",
}  # fmt: skip


def request_id() -> str:
    """This request's id: the client's ``X-Request-ID`` when it is a sane token, else a new one.

    Assigned on first use, so that an error raised before any ``before_request`` hook
    ran still carries the same id in its body and in its header.
    """
    if "request_id" not in g:
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if REQUEST_ID.fullmatch(sent) else secrets.token_hex(8)
    return str(g.request_id)


def problem(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response; ``kind`` is the slug under ``/problems/``."""
    kind = kind or _SLUGS.get(status, "error")
    body: dict[str, Any] = {
        "type": kind if kind.startswith("http") else f"/problems/{kind}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": quote(request.path, safe=_PATH_SAFE),  # a URI reference: re-encoded
        "request_id": request_id(),
        **extra,
    }
    response = Response(json.dumps(body, default=str), status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_problem(errors: dict[str, list[str]]) -> Response:
    count = len(errors)
    noun = "field" if count == 1 else "fields"
    return problem(
        400,
        f"The request has {count} invalid {noun}: {', '.join(sorted(errors))}.",
        kind="validation-error",
        title="Validation Error",
        errors=errors,
    )


def unauthorized(detail: str) -> Response:
    has_token = request.headers.get("Authorization", "").strip() != ""
    challenge = 'Bearer realm="folio"' + (', error="invalid_token"' if has_token else "")
    return problem(401, detail, headers={"WWW-Authenticate": challenge})


def register_error_handlers(app: Flask) -> None:
    """Map every error, domain or HTTP, to problem+json; only the 500 handler is broad."""
    _register_domain_errors(app)
    _register_dependency_errors(app)
    app.register_error_handler(wz.HTTPException, _http_error)
    app.register_error_handler(Exception, _internal_error)


def _register_domain_errors(app: Flask) -> None:
    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        return validation_problem(flatten_errors(exc.normalized_messages()))

    @app.errorhandler(InvalidInput)
    def _invalid(exc: InvalidInput) -> Response:
        return validation_problem(exc.errors)

    @app.errorhandler(AuthenticationFailed)
    def _auth(exc: AuthenticationFailed) -> Response:
        return unauthorized(exc.detail)

    @app.errorhandler(PermissionDenied)
    def _forbidden(exc: PermissionDenied) -> Response:
        return problem(403, exc.detail)

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> Response:
        return problem(404, exc.detail)

    @app.errorhandler(Conflict)
    def _conflict(exc: Conflict) -> Response:
        return problem(409, exc.detail, **exc.extra)

    @app.errorhandler(Gone)
    def _gone(exc: Gone) -> Response:
        return problem(410, exc.detail)

    @app.errorhandler(IdempotencyKeyReused)
    def _key_reused(exc: IdempotencyKeyReused) -> Response:
        return problem(422, exc.detail, kind="idempotency-key-reused",
                       title="Idempotency Key Reused")  # fmt: skip

    @app.errorhandler(QuotaExceeded)
    def _quota(exc: QuotaExceeded) -> Response:
        return problem(429, exc.detail, kind="too-many-active-jobs", title="Too Many Active Jobs",
                       headers={"Retry-After": QUOTA_RETRY_AFTER},
                       retry_after=int(QUOTA_RETRY_AFTER), **exc.extra)  # fmt: skip


def _register_dependency_errors(app: Flask) -> None:
    """A database or Redis outage is a 503 with ``Retry-After``, never a 500."""

    @app.errorhandler(DependencyUnavailable)
    def _unavailable(exc: DependencyUnavailable) -> Response:
        log.warning("dependency unavailable: %s", exc.detail)
        return problem(503, exc.detail, headers=RETRY_AFTER)

    # A pool timeout means every connection is busy: the database cannot serve us now.
    @app.errorhandler(sa.OperationalError)
    @app.errorhandler(sa.TimeoutError)
    def _database_down(exc: sa.SQLAlchemyError) -> Response:
        if not is_database_outage(exc):  # a missing table, a bad query: our bug, a 500
            return _internal_error(exc)
        log.warning("database unavailable: %s", getattr(exc, "orig", None) or exc)
        detail = "The database is unavailable; try again shortly."
        return problem(503, detail, headers=RETRY_AFTER)

    # Services wrap their Redis calls in ``redis_required``; this catches any that do not.
    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    def _redis_down(exc: redis.RedisError) -> Response:
        log.warning("redis unavailable: %s", exc)
        return problem(503, "Redis is unavailable; try again shortly.", headers=RETRY_AFTER)


# SQLSTATE classes of an unreachable or restarting PostgreSQL: connection exceptions
# (08xxx), and operator intervention such as a shutdown or a crash recovery (57P0x).
_OUTAGE_SQLSTATES = ("08", "57P01", "57P02", "57P03")
_SQLITE_OUTAGES = ("database is locked", "unable to open database", "disk i/o error")


def is_database_outage(exc: sa.SQLAlchemyError) -> bool:
    """True when the database cannot serve now; False for errors in what we asked of it."""
    if isinstance(exc, sa.TimeoutError) or getattr(exc, "connection_invalidated", False):
        return True
    original = getattr(exc, "orig", None)
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate:
        return str(sqlstate).startswith(_OUTAGE_SQLSTATES)
    message = str(original).lower()
    if type(original).__module__.startswith("sqlite3"):
        return message.startswith(_SQLITE_OUTAGES)
    return "connect" in message  # failed before any server answered: no SQLSTATE


def _http_error(exc: wz.HTTPException) -> Response:
    """Werkzeug's errors (routing, 405, 413, 415, malformed JSON) as problems, never HTML."""
    if isinstance(exc, wz.InternalServerError):
        return _internal_error(exc)
    if isinstance(exc, MalformedJSON):
        return problem(400, exc.description or "", kind="malformed-json", title="Malformed JSON")
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return problem(status, _http_detail(exc), headers=headers)


def _http_detail(exc: wz.HTTPException) -> str:
    """Werkzeug's generic descriptions, made specific where a client can act on them."""
    if exc.description and exc.description != type(exc).description:
        return exc.description  # raised with a message of its own
    if isinstance(exc, wz.NotFound):
        return f"There is no resource at {request.path}."
    if isinstance(exc, wz.MethodNotAllowed) and exc.valid_methods:
        allowed = ", ".join(sorted(exc.valid_methods))
        return f"{request.method} is not allowed on {request.path}; allowed: {allowed}."
    if isinstance(exc, wz.RequestEntityTooLarge) and request.max_content_length:
        return f"The request body is larger than the limit of {request.max_content_length} bytes."
    return exc.description or HTTPStatus(exc.code or 500).phrase


def _internal_error(exc: Exception) -> Response:
    original = getattr(exc, "original_exception", None) or exc
    log.error("unhandled error, request %s", request_id(), exc_info=original)
    return problem(500, "An unexpected error occurred; it has been logged.")
