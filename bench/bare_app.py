"""Folio's app plus one bare JSON route, for ``bench.cache``: ``gunicorn bench.bare_app:app``.

``GET /api/bench/bare`` answers a small constant JSON object through everything Folio
puts around a view: the request id, the rate limiter (the API-wide limit applies, keyed
by the caller), CORS, the after-request hooks and the JSON provider. It reads no
database and no cache: what a cached read costs beyond it is the cache's own work.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from api import create_app
from shared.config import Settings

BARE_PATH = "/api/bench/bare"
BARE_BODY = {"status": "ok"}


def bare() -> dict[str, str]:
    return dict(BARE_BODY)


def create_bench_app(settings: Settings | None = None) -> Flask:
    """``create_app(settings)`` with the bare route added before any request."""
    app = create_app(settings or Settings.from_env())
    app.add_url_rule(BARE_PATH, "bench_bare", bare, methods=["GET"])
    return app


def __getattr__(name: str) -> Any:
    """``app`` is built when gunicorn asks for it: importing this module builds nothing."""
    if name == "app":
        return create_bench_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
