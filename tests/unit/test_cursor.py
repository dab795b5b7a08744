"""The signed cursor codec: round trips, and every kind of tampering refused."""

from __future__ import annotations

import base64
import json

import pytest
from itsdangerous import URLSafeSerializer

from shared.cursor import CursorCodec, InvalidCursor

SECRET = "unit-test-secret-0123456789abcdef"
SALT = "folio.books.cursor"


@pytest.fixture
def codec() -> CursorCodec:
    return CursorCodec(SECRET, salt=SALT)


def test_round_trip_keeps_sort_filters_and_key(codec: CursorCodec) -> None:
    filters = {"genre": "Fiction", "author": "Émile Zola", "year_from": 1900, "owner_id": 3}
    token = codec.encode(sort="-price", filters=filters, key=["9.99", 42])
    assert codec.decode(token) == ("-price", filters, ["9.99", 42])


def test_token_is_url_safe_and_opaque(codec: CursorCodec) -> None:
    token = codec.encode(sort="title", filters={"q": "war & peace?"}, key=["War", 1])
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert "war" not in token


def test_every_single_character_change_is_refused(codec: CursorCodec) -> None:
    token = codec.encode(sort="id", filters={"genre": "History"}, key=[5, 5])
    # The last character of the base64 signature carries 2 unused bits: changing only
    # those decodes to the same signature, so it is the one position left out.
    for i, char in enumerate(token[:-1]):
        replacement = "A" if char != "A" else "B"
        tampered = token[:i] + replacement + token[i + 1 :]
        with pytest.raises(InvalidCursor):
            codec.decode(tampered)


def test_forged_payload_without_the_key_is_refused(codec: CursorCodec) -> None:
    token = codec.encode(sort="id", filters={}, key=[5, 5])
    forged = {"s": "id", "f": {}, "k": [0, 0]}
    payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    signature = token.rsplit(".", 1)[1]
    for candidate in (payload, f"{payload}.{signature}", payload + ".AAAA"):
        with pytest.raises(InvalidCursor):
            codec.decode(candidate)


def test_cursor_signed_with_another_secret_or_salt_is_refused(codec: CursorCodec) -> None:
    for other in (
        CursorCodec("another-secret-0123456789", salt=SALT),
        CursorCodec(SECRET, salt="x"),
    ):
        with pytest.raises(InvalidCursor):
            codec.decode(other.encode(sort="id", filters={}, key=[1, 1]))


@pytest.mark.parametrize("token", ["", ".", "abc", "a.b.c", "!!!", "é" * 10, "x" * 5000])
def test_garbage_is_refused(codec: CursorCodec, token: str) -> None:
    with pytest.raises(InvalidCursor):
        codec.decode(token)


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2, 3],
        "text",
        {"s": "id", "f": {}},
        {"s": 1, "f": {}, "k": [1, 1]},
        {"s": "id", "f": [], "k": [1, 1]},
        {"s": "id", "f": {}, "k": [1]},
        {"s": "id", "f": {}, "k": "1,1"},
    ],
)
def test_well_signed_payload_of_the_wrong_shape_is_refused(
    codec: CursorCodec, payload: object
) -> None:
    token = URLSafeSerializer(SECRET, salt=SALT).dumps(payload)
    with pytest.raises(InvalidCursor):
        codec.decode(token)
