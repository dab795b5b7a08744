"""The OpenAPI builder on an app that grew a route the operations table does not know."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from api import create_app
from api.openapi import build_document, undocumented_endpoints
from shared.db import db
from tests.conftest import test_settings


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """The real app; building the document touches neither the database nor Redis."""
    settings = test_settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}", redis_url="redis://127.0.0.1:1/0"
    )
    app = create_app(settings)
    yield app
    with app.app_context():
        db.engine.dispose()
    app.extensions["folio"].redis.close()


def test_a_route_without_an_entry_is_named_and_an_unknown_converter_refused(app: Flask) -> None:
    app.add_url_rule("/api/things/<int:thing_id>", "things.get_thing", lambda **_: "")
    app.add_url_rule("/api/gadgets", "gadgets.list_gadgets", lambda: "")
    assert undocumented_endpoints(app) == ["gadgets.list_gadgets", "things.get_thing"]
    with pytest.raises(TypeError, match="thing_id"):  # a converter the document cannot type
        build_document(app)


def test_an_undocumented_route_keeps_the_document_servable(app: Flask) -> None:
    app.add_url_rule("/api/gadgets", "gadgets.list_gadgets", lambda: "")
    document = build_document(app)
    assert document["paths"]["/api/gadgets"]["get"]["responses"] == {
        "default": {"description": "Undocumented."}
    }
