"""The OpenAPI document (``GET /api/openapi.json``) and the interactive docs (``/api/docs``)."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from marshmallow import fields
from openapi_spec_validator import validate

from api.openapi import build_document, undocumented_endpoints
from api.openapi.operations import NOT_DOCUMENTED, OPERATIONS
from shared.schemas.book import BookCreateSchema, BookSchema
from shared.schemas.job import ImportParamsSchema
from tests.functional.conftest import assert_problem
from tests.functional.test_rate_limits import limited
from tests.support.live import Api
from tests.support.servers import RedisServer

METHODS = {"GET", "PUT", "POST", "PATCH", "DELETE"}
# Entries for routes that other branches add (operations work in progress): once they
# are merged this set must be emptied, and then any entry without a route fails below.
AWAITING_MERGE: set[str] = set()  # endpoints documented before their route lands
SCHEMAS = "#/components/schemas/"


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    response = api.get("/api/openapi.json")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, item in document["paths"].items()
            for method, op in item.items() if method.upper() in METHODS}  # fmt: skip


def _rules(app: Flask) -> set[tuple[str, str]]:
    """Every (method, path template) the app routes, but its static files and docs assets."""
    return {(method, re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule))
            for rule in app.url_map.iter_rules() if rule.endpoint not in NOT_DOCUMENTED
            for method in (rule.methods or set()) & METHODS}  # fmt: skip


def test_the_document_is_valid_openapi_3_1_and_cached_by_etag(api: Api) -> None:
    response = api.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-cache"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    again = api.get("/api/openapi.json", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["X-Request-ID"]
    shared = api.get("/api/openapi.json", headers={"Origin": "https://editor.example"})
    assert shared.headers["Access-Control-Allow-Origin"] == "*"  # CORS_ORIGINS in testing


def test_every_route_of_the_app_is_documented_with_its_methods(
    app: Flask, document: dict[str, Any]
) -> None:
    assert undocumented_endpoints(app) == [], "add these endpoints to api/openapi/operations.py"
    assert set(_operations(document)) == _rules(app)
    for must in ("/health", "/health/ready", "/api/books", "/api/jobs/{job_id}", "/api/docs"):
        assert must in document["paths"]


def test_every_entry_of_the_operations_table_has_a_route(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(OPERATIONS) - endpoints <= AWAITING_MERGE, "a stale entry in OPERATIONS"


def test_every_operation_lists_its_error_responses_as_problems(document: dict[str, Any]) -> None:
    shared = document["components"]["responses"]
    for (method, path), op in _operations(document).items():
        responses = {int(status): shared[answer["$ref"].rsplit("/", 1)[1]]
                     if "$ref" in answer else answer
                     for status, answer in op["responses"].items()}  # fmt: skip
        label = f"{method} {path}"
        assert 500 in responses, label
        for status, answer in responses.items():
            assert answer["headers"]["X-Request-ID"]["required"], label
            if status >= 400:
                assert set(answer["content"]) == {"application/problem+json"}, label
        if "security" in op:
            assert 401 in responses, label
            assert "WWW-Authenticate" in responses[401]["headers"], label
        if "requestBody" in op:
            assert {400, 413, 415} <= set(responses), label
        if "{" in path:
            assert 404 in responses, label
        if path.startswith("/api/") and path not in ("/api/openapi.json", "/api/docs"):
            assert 429 in responses, label
            assert "Retry-After" in responses[429]["headers"], label


def test_bodies_are_the_marshmallow_schemas_that_validate_them(
    app: Flask, document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    schemas = document["components"]["schemas"]
    create = document["paths"]["/api/books"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": SCHEMAS + "BookCreate"
    }
    assert set(schemas["BookCreate"]["properties"]) == set(BookCreateSchema().fields)
    assert sorted(schemas["BookCreate"]["required"]) == ["author", "title"]
    assert "required" not in schemas["BookPatch"]  # PATCH: every field optional
    assert set(schemas["Book"]["properties"]) == set(BookSchema().fields)
    assert schemas["Book"]["properties"]["created_at"]["format"] == "date-time"
    assert set(schemas["ImportParams"]["properties"]) == set(ImportParamsSchema().fields)
    # A field added to the schema shows up in the next document built.
    monkeypatch.setitem(BookCreateSchema._declared_fields, "subtitle", fields.String())
    rebuilt = build_document(app)["components"]["schemas"]["BookCreate"]
    assert "subtitle" in rebuilt["properties"]


def test_job_submission_has_one_variant_per_job_type(document: dict[str, Any]) -> None:
    submit = document["components"]["schemas"]["JobSubmit"]
    variants = {v["title"]: v for v in submit["oneOf"]}
    assert set(variants) == {"books.import", "books.export", "books.report", "cache.warm",
                             "cache.invalidate"}  # fmt: skip
    assert variants["books.import"]["properties"]["params"] == {"$ref": SCHEMAS + "ImportParams"}
    assert variants["books.import"]["required"] == ["type", "params"]
    csv = document["paths"]["/api/books/imports"]["post"]
    assert set(csv["requestBody"]["content"]) == {"text/csv"}
    result = document["paths"]["/api/jobs/{job_id}/result"]["get"]["responses"]["200"]
    assert {"text/csv", "application/x-ndjson", "application/json"} == set(result["content"])
    headers = {p["$ref"].rsplit("/", 1)[1] for p in
               document["paths"]["/api/jobs"]["post"]["parameters"] if "$ref" in p}  # fmt: skip
    assert "Idempotency-Key" in headers


def test_both_pagination_modes_and_their_headers_are_documented(document: dict[str, Any]) -> None:
    listing = document["paths"]["/api/books"]["get"]
    query = {p["name"] for p in listing["parameters"] if p.get("in") == "query"}
    assert {"page", "per_page", "cursor", "limit", "sort", "q", "genre"} <= query
    ok = listing["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["oneOf"] == [
        {"$ref": SCHEMAS + "BookPage"},
        {"$ref": SCHEMAS + "BookCursorPage"},
    ]
    assert {"ETag", "Link", "X-RateLimit-Remaining", "RateLimit"} <= set(ok["headers"])
    accepted = document["paths"]["/api/jobs"]["post"]["responses"]["202"]["headers"]
    assert accepted["Location"]["required"]
    assert accepted["Retry-After"]["required"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def _example_path(path: str) -> str:
    return (
        path.replace("{job_id}", str(uuid.uuid4()))
        .replace("{book_id}", "1")
        .replace("{user_id}", "1")
    )


def test_operations_documented_as_protected_refuse_a_missing_token(
    api: Api, document: dict[str, Any]
) -> None:
    protected = [(m, p) for (m, p), op in _operations(document).items() if "security" in op]
    assert len(protected) > 10
    for method, path in protected:
        response = api.request(method, _example_path(path))
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = found.get("src") if tag == "script" else found.get("href")
        if tag in ("script", "link") and url:
            self.urls.append(url)


@pytest.mark.parametrize("page", ["/api/docs", "/api/docs/"])
def test_the_docs_page_and_its_assets_are_served_by_the_app(api: Api, page: str) -> None:
    response = api.get(page, allow_redirects=False)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "/api/openapi.json" in response.text
    parser = _Assets()
    parser.feed(response.text)
    assert len(parser.urls) >= 3  # the bundle, the preset and the stylesheet at least
    assert not [url for url in parser.urls if not url.startswith("/api/docs/")], "a CDN URL"
    for url in parser.urls:
        asset = api.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    missing = api.get("/api/docs/no-such-file.js")
    assert_problem(missing, 404)


def test_the_document_and_the_docs_are_not_rate_limited(
    app: Flask, redis_server: RedisServer
) -> None:
    with limited(app, redis_server.url, ratelimit_default="1 per minute") as api:
        paths = ("/api/openapi.json", "/api/docs", "/api/docs/swagger-ui.css")
        answers = [api.get(path) for path in paths for _ in range(3)]
        counted = [api.get("/api/books") for _ in range(2)]
    assert [a.status_code for a in answers] == [200] * 9
    assert not any("X-RateLimit-Limit" in a.headers for a in answers)
    assert [c.status_code for c in counted] == [200, 429]
