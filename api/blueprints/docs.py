"""The OpenAPI document and the interactive docs (Swagger UI, served from its package)."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, request
from flask_swagger_ui import get_swaggerui_blueprint  # type: ignore[import-untyped]

from api.json import FolioJSONProvider
from api.openapi import openapi_document

bp = Blueprint("docs", __name__, url_prefix="/api")
# Swagger UI 5 (OpenAPI 3.1), its JS and CSS shipped in the flask-swagger-ui wheel. No
# validator badge: it would send the document to validator.swagger.io (and fail offline).
ui = get_swaggerui_blueprint(
    "/api/docs", "/api/openapi.json", blueprint_name="docs_ui",
    config={"app_name": "Folio API", "validatorUrl": None, "persistAuthorization": True},
)  # fmt: skip


@bp.get("/openapi.json")
def openapi() -> Response:
    """This OpenAPI document, generated from the schemas that validate the requests."""
    text, etag = openapi_document(current_app)
    response = Response(text, content_type=FolioJSONProvider.mimetype)
    response.headers["Cache-Control"] = "no-cache"
    response.set_etag(etag)
    response.make_conditional(request)
    return response


def register(app: Flask) -> None:
    """Both blueprints, and the docs page at ``/api/docs`` too (not only ``/api/docs/``)."""
    app.register_blueprint(bp)
    app.register_blueprint(ui)
    app.add_url_rule("/api/docs", "docs_ui.index", app.view_functions["docs_ui.show"])
