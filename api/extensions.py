"""Per-app services built once by the factory, reached through ``folio()``."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from flask import current_app
from redis import Redis

from shared.config import Settings
from shared.cursor import CursorCodec
from shared.security.passwords import Passwords
from shared.security.tokens import TokenIssuer


@dataclass(frozen=True)
class Folio:
    settings: Settings
    redis: Redis
    broker: Redis  # the broker's Redis, read for queue depths (``redis`` if the same)
    tokens: TokenIssuer
    passwords: Passwords
    cursors: CursorCodec
    celery: Celery  # a producer: sends jobs by task name, never runs them


def folio() -> Folio:
    """The services of the current app."""
    services: Folio = current_app.extensions["folio"]
    return services
