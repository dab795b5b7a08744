"""Domain errors raised by services; ``api/errors.py`` maps each to an HTTP problem."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    """The thing does not exist (or the caller may not know that it does)."""


class Conflict(DomainError):
    """The request clashes with the current state (duplicates, wrong job state)."""


class PermissionDenied(DomainError):
    """Authenticated, but not allowed to do this."""


class AuthenticationFailed(DomainError):
    """No valid credentials: bad password, bad or revoked token, deleted user."""


class InvalidInput(DomainError):
    """Input that passed the schema but breaks a rule only a service can check."""

    def __init__(self, detail: str, errors: Mapping[str, list[str]]) -> None:
        super().__init__(detail)
        self.errors = dict(errors)


class DependencyUnavailable(DomainError):
    """A backing service (database, Redis, broker) cannot be reached."""


class Gone(DomainError):
    """The thing existed and has expired (a job's result after ``JOB_RESULT_TTL``)."""


class IdempotencyKeyReused(DomainError):
    """An ``Idempotency-Key`` sent again with a different request."""


class QuotaExceeded(DomainError):
    """The caller has as many active jobs as the tier allows."""


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as ``{"params.on_conflict": [...]}``."""
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": messages}
    if not isinstance(messages, Mapping):
        return {prefix or "_schema": [str(messages)]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        flat.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
