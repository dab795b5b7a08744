"""The web process: ``create_app(settings)`` builds the Flask app.

``flask --app api ...`` calls ``create_app()`` with no argument, which reads the
environment; everything else passes a ``Settings`` object.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request
from flask_cors import CORS
from flask_migrate import Migrate
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from api import cli
from api.blueprints import admin, auth, books, docs, health, jobs, metrics, search, users
from api.cache import init_cache
from api.errors import register_error_handlers, request_id
from api.extensions import Folio, folio
from api.http import FolioRequest, IdConverter
from api.json import FolioJSONProvider
from api.limits import init_limiter
from api.prometheus import init_metrics
from shared import models  # noqa: F401 - registers the tables for migrations
from shared.broker import make_producer
from shared.config import PROJECT_ROOT, Settings
from shared.cursor import book_cursors
from shared.db import db, include_in_autogenerate, init_db
from shared.logs import bind_log_context, configure_logging, reset_log_context
from shared.redis_client import make_redis
from shared.security.passwords import Passwords
from shared.security.tokens import TokenIssuer

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
    app.url_map.converters["id"] = IdConverter
    app.url_map.merge_slashes = False  # "/api//books" is a 404 problem, not an HTML redirect
    app.json = FolioJSONProvider(app)
    if settings.trusted_proxies:  # the client's address as the last trusted proxy saw it
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        TESTING=settings.env == "testing",
        FOLIO_SETTINGS=settings,
    )
    init_db(app, settings)
    Migrate(
        app, db, directory=str(PROJECT_ROOT / "migrations"),
        include_object=include_in_autogenerate, compare_type=True,
    )  # fmt: skip
    app.extensions["folio"] = _services(settings)
    init_metrics(app)  # first hooks: they time all the others
    init_cache(app, settings)
    app.before_request(_assign_request_id)
    app.before_request(_refuse_oversized_chunked_body)
    _configure_cors(app, settings)
    blueprints = (auth.bp, users.bp, books.bp, jobs.imports_bp, jobs.bp, search.bp, admin.bp,
                  health.bp, metrics.bp)  # fmt: skip
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    docs.register(app)
    register_error_handlers(app)
    init_limiter(app)
    app.after_request(_finish_response)
    app.teardown_request(_forget_request_id)
    cli.register(app)
    _configure_logging(settings)
    return app


def _configure_logging(settings: Settings) -> None:
    """JSON lines for the CLI and ``flask run``; gunicorn configures them before the app
    exists (``gunicorn.conf.py``), and tests keep pytest's own capture."""
    if settings.env != "testing" and not logging.getLogger().handlers:
        configure_logging(settings.log_level, process="web")


def _configure_cors(app: Flask, settings: Settings) -> None:
    """CORS for ``/api/*`` only; ``*`` is answered as ``*``, never as the reflected origin.

    No credentials (bearer tokens travel in a header, not in cookies), so a wildcard
    is safe; an explicit list is matched literally (case-insensitively, not as a regex).
    """
    CORS(
        app,
        resources={r"/api/.*": {"origins": list(settings.cors_origins)}},
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=CORS_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        supports_credentials=False,
        send_wildcard="*" in settings.cors_origins,
        max_age=600,
    )


def _services(settings: Settings) -> Folio:
    store = make_redis(settings.redis_url)
    same = settings.broker_url == settings.redis_url
    return Folio(
        settings=settings,
        redis=store,
        broker=store if same else make_redis(settings.broker_url),
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
        cursors=book_cursors(settings.secret_key),
        celery=make_producer(settings),
    )


def _assign_request_id() -> None:
    """Every line logged while this request is served carries its id (``shared.logs``)."""
    bind_log_context(request_id=request_id())  # returning the id would make it the response


def _forget_request_id(_: BaseException | None) -> None:
    reset_log_context()  # gthread reuses this thread for the next request


def _refuse_oversized_chunked_body() -> None:
    """413 for a chunked body over ``MAX_CONTENT_LENGTH``.

    Without a ``Content-Length`` Werkzeug cannot refuse the body up front, and reading
    it silently stops at the limit: a view would see a truncated body (a JSON error,
    or worse, a shorter CSV). Read it here, bounded by the limit, and check for more.
    """
    limit = request.max_content_length
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not chunked or limit is None or request.content_length is not None:
        return
    if len(request.get_data()) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def _finish_response(response: Response) -> Response:
    response.headers["X-Request-ID"] = request_id()
    if request.method == "OPTIONS" and response.mimetype == "text/html":
        del response.headers["Content-Type"]  # Flask's automatic answer has no body
    # Private when the answer carries something of an authenticated user: the view's
    # data, or the rate-limit headers of that user's budget (the limiter identifies the
    # caller even on public reads; with limits off a public read has nothing private).
    # A rejected token never makes an answer private.
    cache_control = response.headers.get("Cache-Control", "")
    if "current_user" in g and "no-store" not in cache_control:
        response.headers["Cache-Control"] = "private, no-cache"
    if request.path.startswith("/api/") and "*" not in folio().settings.cors_origins:
        # The CORS headers depend on Origin; Flask-CORS says so only for several origins.
        response.vary.add("Origin")
    return response
