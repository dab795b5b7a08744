"""TokenIssuer without a server: what it issues, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import string
import time
from typing import Any

import pytest
from jose import jwt

from shared.security.tokens import (
    ACCESS,
    LEEWAY_SECONDS,
    REFRESH,
    InvalidToken,
    TokenIssuer,
    new_session_id,
)

KEY = "unit-test-signing-key-0123456789abcdef"
ISSUER = TokenIssuer(
    secret_key=KEY, issuer="folio", audience="folio-api", access_ttl=900, refresh_ttl=3600
)
SID = "session-id-0123456789"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(claims: dict[str, Any], *, key: str = KEY, header: dict[str, Any] | None = None) -> str:
    """An HS256 token built by hand, so that any header or claim can be set."""
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "7",
        "type": "access",
        "jti": "abcdefgh12345678",
        "sid": SID,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "iss": "folio",
        "aud": "folio-api",
    }
    return {k: v for k, v in (base | overrides).items() if v is not None}


def test_issued_access_token_carries_every_required_claim() -> None:
    before = int(time.time())
    token = ISSUER.issue(user_id=42, token_type="access", session_id=SID)
    payload = jwt.get_unverified_claims(token)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert payload["sub"] == "42"
    assert payload["type"] == "access"
    assert payload["iss"] == "folio"
    assert payload["aud"] == "folio-api"
    assert before <= payload["iat"] == payload["nbf"] <= int(time.time())
    assert payload["exp"] == payload["iat"] + 900
    verified = ISSUER.verify(token, expected_type="access")
    assert (verified.user_id, verified.token_type, verified.jti) == (42, "access", payload["jti"])
    assert verified.issued_at == payload["iat"]
    assert verified.expires_at == payload["exp"]
    assert verified.accepted_until == payload["exp"] + LEEWAY_SECONDS
    assert payload["sid"] == verified.session_id == SID


def test_refresh_token_lives_longer_and_every_token_has_its_own_id() -> None:
    token = ISSUER.issue(user_id=1, token_type="refresh", session_id=SID)
    verified = ISSUER.verify(token, expected_type="refresh")
    assert verified.expires_at - verified.issued_at == 3600
    jtis = {
        ISSUER.verify(
            ISSUER.issue(user_id=1, token_type="access", session_id=SID), expected_type="access"
        ).jti
        for _ in range(20)
    }
    assert len(jtis) == 20


def test_session_ids_are_fresh_and_every_token_keeps_the_one_it_was_given() -> None:
    sessions = {new_session_id() for _ in range(20)}
    assert len(sessions) == 20
    assert all(16 <= len(sid) <= 64 for sid in sessions)
    sid = sessions.pop()
    for token_type in (ACCESS, REFRESH):
        token = ISSUER.issue(user_id=1, token_type=token_type, session_id=sid)
        assert ISSUER.verify(token, expected_type=token_type).session_id == sid


def test_hand_built_token_is_accepted_so_the_forger_is_faithful() -> None:
    assert ISSUER.verify(forge(claims()), expected_type="access").user_id == 7


@pytest.mark.parametrize(("issued", "expected"), [("access", "refresh"), ("refresh", "access")])
def test_wrong_token_type_is_refused(issued: Any, expected: Any) -> None:
    token = ISSUER.issue(user_id=1, token_type=issued, session_id=SID)
    with pytest.raises(InvalidToken, match="wrong token type"):
        ISSUER.verify(token, expected_type=expected)


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "sub", "jti", "sid", "iss", "aud", "type"])
def test_token_without_a_required_claim_is_refused(claim: str) -> None:
    with pytest.raises(InvalidToken):
        ISSUER.verify(forge(claims(**{claim: None})), expected_type="access")


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"iss": "someone-else"}, id="wrong-iss"),
        pytest.param({"aud": "other-api"}, id="wrong-aud"),
        pytest.param({"aud": ["other-api"]}, id="wrong-aud-list"),
        pytest.param({"sub": "abc"}, id="non-numeric-sub"),
        pytest.param({"sub": "²"}, id="unicode-digit-sub"),
        pytest.param({"sub": "0"}, id="zero-sub"),
        pytest.param({"sub": "-1"}, id="negative-sub"),
        pytest.param({"sub": "1" * 19}, id="huge-sub"),
        pytest.param({"sub": 7}, id="integer-sub"),
        pytest.param({"jti": "short"}, id="short-jti"),
        pytest.param({"jti": "x" * 65}, id="long-jti"),
        pytest.param({"jti": 12345678}, id="integer-jti"),
        pytest.param({"sid": "short"}, id="short-sid"),
        pytest.param({"sid": "x" * 65}, id="long-sid"),
        pytest.param({"sid": 123456789}, id="integer-sid"),
        pytest.param({"sid": ["session-id-0123456789"]}, id="list-sid"),
        pytest.param({"exp": "9999999999"}, id="string-exp"),
        pytest.param({"exp": int(time.time()) + 900.5}, id="float-exp"),
        pytest.param({"iat": True}, id="boolean-iat"),
        pytest.param({"type": "ACCESS"}, id="type-case"),
    ],
)
def test_signed_token_with_bad_claims_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        ISSUER.verify(forge(claims(**overrides)), expected_type="access")


def test_time_claims_honour_the_leeway_and_no_more() -> None:
    now = int(time.time())
    inside, outside = LEEWAY_SECONDS - 5, LEEWAY_SECONDS + 5
    ISSUER.verify(forge(claims(exp=now - inside)), expected_type="access")
    ISSUER.verify(forge(claims(nbf=now + inside)), expected_type="access")
    ISSUER.verify(forge(claims(iat=now + inside)), expected_type="access")
    with pytest.raises(InvalidToken, match="expired"):
        ISSUER.verify(forge(claims(exp=now - outside)), expected_type="access")
    with pytest.raises(InvalidToken, match="not yet valid"):
        ISSUER.verify(forge(claims(nbf=now + outside)), expected_type="access")
    with pytest.raises(InvalidToken, match="future"):
        ISSUER.verify(forge(claims(iat=now + outside)), expected_type="access")


def test_issue_with_a_past_clock_gives_an_expired_token() -> None:
    token = ISSUER.issue(
        user_id=1, token_type="access", session_id=SID, now=time.time() - 900 - LEEWAY_SECONDS - 5
    )
    with pytest.raises(InvalidToken):
        ISSUER.verify(token, expected_type="access")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(forge(claims(), key="another-key-entirely-0123456789"), id="other-key"),
        pytest.param(
            forge(claims(), header={"alg": "none", "typ": "JWT"}).rsplit(".", 1)[0] + ".",
            id="alg-none-empty-signature",
        ),
        pytest.param(forge(claims(), header={"alg": "none"}), id="alg-none-with-signature"),
        pytest.param(forge(claims(), header={"alg": "None"}), id="alg-None"),
        pytest.param(forge(claims(), header={"alg": "HS512"}), id="header-says-HS512"),
        pytest.param(forge(claims(), header={"typ": "JWT"}), id="no-alg"),
        pytest.param(jwt.encode(claims(), KEY, algorithm="HS512"), id="HS512-right-key"),
        pytest.param(jwt.encode(claims(), KEY, algorithm="HS384"), id="HS384-right-key"),
        pytest.param(forge(claims()).rsplit(".", 1)[0] + ".", id="signature-stripped"),
        pytest.param(forge(claims()).rsplit(".", 1)[0], id="two-segments"),
        pytest.param(forge(claims()) + ".extra", id="four-segments"),
        pytest.param(forge(claims()) + "=", id="padded"),
        pytest.param(" " + forge(claims()), id="leading-space"),
        pytest.param("", id="empty"),
        pytest.param("a.b.c", id="a.b.c"),
        pytest.param("not a token at all", id="text"),
        pytest.param("x" * 5000, id="very-long"),
        pytest.param(b64(b"[1]") + "." + b64(b"{}") + ".sig", id="header-not-object"),
        pytest.param(b64(b'{"alg":"HS256"}') + "." + b64(b"[1]") + ".sig", id="payload-not-object"),
        pytest.param("é.é.é", id="non-ascii"),
    ],
)
def test_forged_or_garbage_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        ISSUER.verify(token, expected_type="access")


def test_payload_not_an_object_signed_with_the_right_key_is_refused() -> None:
    head = b64(b'{"alg":"HS256","typ":"JWT"}')
    body = b64(b"[1, 2]")
    signature = hmac.new(KEY.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken):
        ISSUER.verify(f"{head}.{body}.{b64(signature)}", expected_type="access")


def test_a_token_has_exactly_one_spelling() -> None:
    """base64's spare bits must not give a second string for the same signature."""
    token = ISSUER.issue(user_id=1, token_type="access", session_id=SID)
    head, body, signature = token.split(".")
    alphabet = string.ascii_letters + string.digits + "-_"
    for char in alphabet:
        variant = f"{head}.{body}.{signature[:-1]}{char}"
        if variant != token:
            with pytest.raises(InvalidToken):
                ISSUER.verify(variant, expected_type="access")


def test_random_mutations_raise_only_invalid_token() -> None:
    """Whatever the bytes, ``verify`` answers ``InvalidToken`` and never another error."""
    rng = random.Random(20261126)  # noqa: S311 - a repeatable fuzz, not a secret
    token = ISSUER.issue(user_id=1, token_type="access", session_id=SID)
    alphabet = string.printable + "é.=-_"
    for _ in range(400):
        chars = list(token)
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        mutated = "".join(chars)
        garbage = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
        for candidate in (mutated, garbage):
            if candidate == token:
                continue
            with pytest.raises(InvalidToken):
                ISSUER.verify(candidate, expected_type="access")
