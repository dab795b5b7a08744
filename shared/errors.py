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
