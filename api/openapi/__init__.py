"""The OpenAPI document (``GET /api/openapi.json``), generated from the app itself."""

from api.openapi.document import build_document, openapi_document, undocumented_endpoints

__all__ = ["build_document", "openapi_document", "undocumented_endpoints"]
