"""The web process: ``create_app(settings)`` builds the Flask app.

``flask --app api ...`` calls ``create_app()`` with no argument, which reads the
environment; everything else passes a ``Settings`` object.
"""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path

from flask import Flask, Response, g, request
from flask_cors import CORS
from flask_migrate import Migrate

from api import cli
from api.blueprints import auth, books, health, search, users
from api.errors import register_error_handlers
from api.extensions import Folio
from api.http import FolioRequest
from api.json import FolioJSONProvider
from shared import models  # noqa: F401 - registers the tables for migrations
from shared.config import PROJECT_ROOT, Settings
from shared.cursor import CursorCodec
from shared.db import db
from shared.redis_client import make_redis
from shared.security.passwords import Passwords
from shared.security.tokens import TokenIssuer

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
CORS_HEADERS = ["Content-Type", "Authorization", "Idempotency-Key", "X-Request-ID", "If-None-Match"]
EXPOSED_HEADERS = [
    "Location", "Retry-After", "X-Request-ID", "Link", "ETag", "RateLimit", "RateLimit-Policy",
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Idempotent-Replayed",
]  # fmt: skip


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app from ``settings`` (read from the environment when omitted)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.request_class = FolioRequest
    app.json = FolioJSONProvider(app)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings),
        MAX_CONTENT_LENGTH=settings.max_content_length,
        TESTING=settings.env == "testing",
        FOLIO_SETTINGS=settings,
    )
    _ensure_sqlite_folder(settings)
    db.init_app(app)
    Migrate(app, db, directory=str(PROJECT_ROOT / "migrations"))
    app.extensions["folio"] = _services(settings)
    CORS(
        app,
        resources={r"/api/*": {"origins": list(settings.cors_origins)}},
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=CORS_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        supports_credentials=False,
        max_age=600,
    )
    for blueprint in (auth.bp, users.bp, books.bp, search.bp, health.bp):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    app.before_request(_assign_request_id)
    app.after_request(_finish_response)
    cli.register(app)
    logging.basicConfig(level=settings.log_level)
    return app


def _services(settings: Settings) -> Folio:
    return Folio(
        settings=settings,
        redis=make_redis(settings.redis_url),
        tokens=TokenIssuer(
            secret_key=settings.jwt_secret_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
        ),
        passwords=Passwords(
            time_cost=settings.password_time_cost, memory_cost=settings.password_memory_cost
        ),
        cursors=CursorCodec(settings.secret_key, salt="folio.books.cursor"),
    )


def _engine_options(settings: Settings) -> dict[str, object]:
    if settings.is_sqlite:
        return {"connect_args": {"timeout": 10}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10, "pool_recycle": 1800}


def _ensure_sqlite_folder(settings: Settings) -> None:
    prefix = "sqlite:///"
    if settings.database_url.startswith(prefix):
        path = settings.database_url[len(prefix) :]
        if path and not path.startswith(":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def _assign_request_id() -> None:
    sent = request.headers.get("X-Request-ID", "")
    g.request_id = sent if REQUEST_ID.match(sent) else secrets.token_hex(8)


def _finish_response(response: Response) -> Response:
    if "request_id" not in g:  # errors raised before before_request ran
        _assign_request_id()
    response.headers["X-Request-ID"] = g.request_id
    if "current_user" in g and response.headers.get("Cache-Control") != "no-store":
        response.headers["Cache-Control"] = "private, no-cache"
    return response
