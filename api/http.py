"""HTTP helpers shared by the blueprints: JSON bodies, conditional GETs, page links."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from flask import Request, Response, jsonify, request
from marshmallow import Schema
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter


class IdConverter(BaseConverter):
    """``<id:name>``: a canonical positive id (``01`` or full-width digits are a 404).

    Werkzeug's ``int`` takes ``01`` and any Unicode digits. Ids above the column's range
    reach the services, which find nothing there (``shared.db.MAX_ID``); refusing them
    here would make Werkzeug answer 405 for the routes of other methods.
    """

    regex = r"[1-9][0-9]{0,9}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class MalformedJSON(BadRequest):
    """The body claims to be JSON and is not."""


class FolioRequest(Request):
    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:  # wrong Content-Type: Flask answers 415 itself
            return super().on_json_loading_failed(e)
        raise MalformedJSON(f"The request body is not valid JSON: {e}")


def load_json(schema: Schema, **kwargs: Any) -> Any:
    """The request body validated by ``schema`` (400 malformed/invalid, 415 not JSON)."""
    return schema.load(request.get_json(), **kwargs)


def load_query(schema: Schema) -> Any:
    """The query string validated by ``schema``; the first value wins for repeated keys."""
    return schema.load(request.args.to_dict())


def public_json(
    payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A public catalog read: strong ETag, ``no-cache``, and 304 on ``If-None-Match``."""
    headers = {**(headers or {}), "Cache-Control": "no-cache"}
    return conditional_json(payload, status=status, headers=headers)


def conditional_json(
    payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """JSON with a strong ETag, and a 304 when ``If-None-Match`` holds it."""
    response = jsonify(payload)
    response.status_code = status
    response.headers.update(headers or {})
    response.add_etag()
    response.make_conditional(request)
    return response


def url_with(**changes: Any) -> str:
    """The current path and query with some parameters changed (``None`` drops one)."""
    args = request.args.to_dict()
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = str(value)
    query = urlencode(args)
    return f"{request.path}?{query}" if query else request.path


def url_only(**params: Any) -> str:
    """The current path with only ``params`` as its query (none of the request's own)."""
    return f"{request.path}?{urlencode(params)}"


def page_envelope(
    items: list[Any], *, total: int, page: int, per_page: int
) -> tuple[dict[str, Any], str]:
    """The page-mode body (items, pagination, links) and its RFC 8288 ``Link`` header."""
    total_pages = math.ceil(total / per_page)
    has_next, has_prev = page < total_pages, page > 1
    links = {
        "self": url_with(page=page, per_page=per_page),
        "first": url_with(page=1, per_page=per_page),
        "last": url_with(page=max(total_pages, 1), per_page=per_page),
        "next": url_with(page=page + 1, per_page=per_page) if has_next else None,
        "prev": url_with(page=page - 1, per_page=per_page) if has_prev else None,
    }
    body = {
        "items": items,
        "pagination": {
            "page": page, "per_page": per_page, "total_pages": total_pages,
            "total_items": total, "has_next": has_next, "has_prev": has_prev,
            "next_page": page + 1 if has_next else None,
            "prev_page": page - 1 if has_prev else None,
        },
        "links": links,
    }  # fmt: skip
    header = ", ".join(
        f'<{url}>; rel="{rel}"' for rel, url in links.items() if url and rel != "self"
    )
    return body, header


def no_content() -> Response:
    """An empty ``204``, without the ``text/html`` type Flask gives an empty string."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response
