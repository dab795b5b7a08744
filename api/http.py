"""HTTP helpers shared by the blueprints: JSON bodies, conditional GETs, page links."""

from __future__ import annotations

from typing import Any

from flask import Request, Response, jsonify, request
from marshmallow import Schema
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter

from shared import pages


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


def page_envelope(
    items: list[Any], *, total: int, page: int, per_page: int
) -> tuple[dict[str, Any], str]:
    """The page-mode body and ``Link`` header of this request (links keep its query)."""
    return pages.page_envelope(items, total=total, page=page, per_page=per_page,
                               path=request.path, args=request.args.to_dict())  # fmt: skip


def no_content() -> Response:
    """An empty ``204``, without the ``text/html`` type Flask gives an empty string."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response
