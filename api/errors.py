"""Every error the service can produce, as RFC 9457 problem+json, in one place."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, g, request
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from api.http import MalformedJSON
from shared.errors import (
    AuthenticationFailed,
    Conflict,
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    PermissionDenied,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
_SLUGS = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 406: "not-acceptable", 409: "conflict", 410: "gone",
    411: "length-required", 412: "precondition-failed", 413: "payload-too-large",
    414: "uri-too-long", 415: "unsupported-media-type", 422: "unprocessable-content",
    429: "too-many-requests", 431: "request-header-fields-too-large",
    500: "internal-error", 501: "not-implemented", 503: "service-unavailable",
}  # fmt: skip


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
        "instance": request.path,
        "request_id": g.get("request_id", ""),
        **extra,
    }
    response = Response(json.dumps(body, default=str), status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as ``{"params.on_conflict": [...]}``."""
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": messages}
    if not isinstance(messages, Mapping):
        return {prefix or "_schema": [str(messages)]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        flat.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


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

    @app.errorhandler(DependencyUnavailable)
    def _unavailable(exc: DependencyUnavailable) -> Response:
        log.warning("dependency unavailable: %s", exc.detail)
        return problem(503, exc.detail, headers={"Retry-After": "5"})

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError) -> Response:
        log.warning("database unavailable: %s", exc.orig)
        detail = "The database is unavailable; try again shortly."
        return problem(503, detail, headers={"Retry-After": "5"})

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        if isinstance(exc, InternalServerError):
            return _internal(exc)
        status = exc.code or 500
        if isinstance(exc, MalformedJSON):
            return problem(400, exc.description or "", kind="malformed-json", title="Malformed JSON")
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return problem(status, exc.description or HTTPStatus(status).phrase, headers=headers)

    @app.errorhandler(Exception)
    def _internal(exc: Exception) -> Response:
        original = getattr(exc, "original_exception", None) or exc
        log.error("unhandled error", exc_info=original)
        return problem(500, "An unexpected error occurred; it has been logged.")
