"""Opaque, signed pagination cursors.

A cursor carries the sort, the filters it was made for and the last row's sort key.
It is signed with HMAC (itsdangerous) under the server's secret, so a client can
neither forge a position nor move a cursor to other filters.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadData, URLSafeSerializer

INVALID_CURSOR = "The cursor is invalid or has been tampered with."


class InvalidCursor(ValueError):
    """The cursor was tampered with, is malformed, or belongs to another query."""


class CursorCodec:
    def __init__(self, secret_key: str, *, salt: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=salt)

    def encode(self, *, sort: str, filters: dict[str, Any], key: list[Any]) -> str:
        return str(self._serializer.dumps({"s": sort, "f": filters, "k": key}))

    def decode(self, token: str) -> tuple[str, dict[str, Any], list[Any]]:
        """``(sort, filters, key)`` of a cursor this server made."""
        try:
            payload = self._serializer.loads(token)
        except (BadData, ValueError, TypeError):
            raise InvalidCursor(INVALID_CURSOR) from None
        well_formed = (
            isinstance(payload, dict)
            and {"s", "f", "k"} <= payload.keys()
            and isinstance(payload["s"], str)
            and isinstance(payload["f"], dict)
            and isinstance(payload["k"], list)
            and len(payload["k"]) == 2
        )
        if not well_formed:
            raise InvalidCursor(INVALID_CURSOR)
        return payload["s"], payload["f"], payload["k"]


def book_cursors(secret_key: str) -> CursorCodec:
    """The codec of the catalog's cursors (the web makes them, a warming worker too)."""
    return CursorCodec(secret_key, salt="folio.books.cursor")
