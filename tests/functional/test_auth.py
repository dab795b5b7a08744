"""Registration, login, refresh, logout and the JWT attack set, over HTTP (API.md section 2)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask
from jose import jwt
from sqlalchemy import func, select, update

from shared.db import db
from shared.models import User
from shared.security.tokens import LEEWAY_SECONDS, new_session_id
from shared.services.auth import REVOKED_PREFIX, REVOKED_SESSION_PREFIX
from tests.functional.conftest import PASSWORD, assert_problem
from tests.support.live import Api

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\Z")
USER_FIELDS = {"id", "email", "username", "role", "tier", "created_at"}
PAIR_FIELDS = {"access_token", "refresh_token", "token_type", "expires_in"}


def register(api: Api, **fields: Any) -> requests.Response:
    payload = {"email": "Alice@Example.COM", "username": "alice", "password": "long enough pw"}
    return api.post("/api/auth/register", json=payload | fields)


def login(api: Api, email: str, password: str = PASSWORD) -> requests.Response:
    return api.post("/api/auth/login", json={"email": email, "password": password})


def assert_unauthorized(response: requests.Response) -> dict[str, Any]:
    body = assert_problem(response, 401, kind="unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


def user_rows(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.execute(select(User.email, User.username))
        return [(email, username) for email, username in rows]


def refresh(api: Api, refresh_token: str) -> requests.Response:
    return api.post("/api/auth/refresh", json={"refresh_token": refresh_token})


def assert_session_works(api: Api, pair: dict[str, Any]) -> dict[str, Any]:
    """The pair's access token is accepted and its refresh token rotates; the new pair."""
    assert api.as_user(pair["access_token"]).get("/api/users/me").status_code == 200
    response = refresh(api, pair["refresh_token"])
    assert response.status_code == 200, response.text
    rotated: dict[str, Any] = response.json()
    return rotated


def assert_session_ended(api: Api, pair: dict[str, Any]) -> None:
    """Neither token of the pair is accepted any more."""
    assert_unauthorized(api.as_user(pair["access_token"]).get("/api/users/me"))
    assert_unauthorized(refresh(api, pair["refresh_token"]))


def backdate_account(app: Flask, user_id: int, *, days: int = 1) -> None:
    """Make an account older, so that tokens forged with a past ``iat`` belong to it."""
    with app.app_context():
        created = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        db.session.execute(update(User).where(User.id == user_id).values(created_at=created))
        db.session.commit()


# -- register -------------------------------------------------------------------------------


def test_register_returns_the_user_with_its_location(api: Api, app: Flask) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    response = register(api, username="Alice.Smith-1_x")
    assert response.status_code == 201, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["email"] == "alice@example.com"
    assert body["username"] == "Alice.Smith-1_x"
    assert (body["role"], body["tier"]) == ("user", "free")
    assert isinstance(body["id"], int)
    assert RFC3339_Z.match(body["created_at"])
    created = dt.datetime.fromisoformat(body["created_at"])
    assert before <= created <= dt.datetime.now(dt.UTC)
    assert response.headers["Location"] == f"/api/users/{body['id']}"
    assert "long enough pw" not in response.text
    assert "argon2" not in response.text
    with app.app_context():
        row = db.session.get(User, body["id"])
        assert row is not None
        assert row.email == "alice@example.com"
        assert row.password_hash.startswith("$argon2id$")
        assert "long enough pw" not in row.password_hash
    token = login(api, "alice@example.com", "long enough pw").json()["access_token"]
    located = api.as_user(token).get(response.headers["Location"])
    assert located.status_code == 200
    assert located.json() == body


@pytest.mark.parametrize("email", ["ALICE@EXAMPLE.COM", "alice@example.com", "aLiCe@ExAmPlE.cOm"])
def test_login_accepts_the_email_in_any_case(api: Api, email: str) -> None:
    assert register(api).status_code == 201
    response = login(api, email, "long enough pw")
    assert response.status_code == 200, response.text


def test_duplicate_email_in_any_case_is_a_conflict(api: Api, app: Flask) -> None:
    assert register(api, email="bob@example.com", username="bob").status_code == 201
    response = register(api, email="BOB@example.com", username="bobby")
    body = assert_problem(response, 409, kind="conflict")
    assert "email" in body["detail"]
    assert user_rows(app) == [("bob@example.com", "bob")]


def test_duplicate_username_in_another_case_is_a_conflict(api: Api, app: Flask) -> None:
    assert register(api, email="one@example.com", username="Reader").status_code == 201
    response = register(api, email="two@example.com", username="rEADER")
    body = assert_problem(response, 409, kind="conflict")
    assert "username" in body["detail"]
    assert user_rows(app) == [("one@example.com", "Reader")]


def test_concurrent_registrations_of_one_email_create_one_user(
    api: Api, app: Flask, live_server: Any
) -> None:
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def attempt(n: int) -> None:
        client = Api(live_server.url)
        barrier.wait()
        statuses.append(
            register(client, email="race@example.com", username=f"racer{n}").status_code
        )

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409]
    assert len(user_rows(app)) == 1


MISSING = object()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("email", "not-an-email", id="email-no-at"),
        pytest.param("email", "alice@", id="email-no-domain"),
        pytest.param("email", "", id="email-empty"),
        pytest.param("email", "a" * 250 + "@example.com", id="email-too-long"),
        pytest.param("email", 12345, id="email-number"),
        pytest.param("email", None, id="email-null"),
        pytest.param("email", MISSING, id="email-missing"),
        pytest.param("username", "ab", id="username-2-chars"),
        pytest.param("username", "a" * 51, id="username-51-chars"),
        pytest.param("username", "with space", id="username-space"),
        pytest.param("username", "slash/name", id="username-slash"),
        pytest.param("username", "ünïcode", id="username-non-ascii"),
        pytest.param("username", "trailing\n", id="username-newline"),
        pytest.param("username", ["alice"], id="username-list"),
        pytest.param("username", MISSING, id="username-missing"),
        pytest.param("password", "7-chars", id="password-7-chars"),
        pytest.param("password", "x" * 129, id="password-129-chars"),
        pytest.param("password", 12345678, id="password-number"),
        pytest.param("password", True, id="password-boolean"),
        pytest.param("password", MISSING, id="password-missing"),
        pytest.param("role", "admin", id="unknown-field-role"),
        pytest.param("id", 1, id="unknown-field-id"),
        pytest.param("password_hash", "$argon2id$...", id="unknown-field-hash"),
    ],
)
def test_register_validation_names_the_field(api: Api, app: Flask, field: str, value: Any) -> None:
    payload: dict[str, Any] = {
        "email": "v@example.com",
        "username": "valid",
        "password": "12345678",
    }
    if value is MISSING:
        del payload[field]
    else:
        payload[field] = value
    response = api.post("/api/auth/register", json=payload)
    body = assert_problem(response, 400, kind="validation-error")
    assert list(body["errors"]) == [field]
    assert all(isinstance(m, str) and m for m in body["errors"][field])
    assert field in body["detail"]
    assert user_rows(app) == []


@pytest.mark.parametrize("raw", ["[]", '"alice"', "42", "null", "true"])
def test_register_body_that_is_not_an_object_is_a_400(api: Api, raw: str) -> None:
    response = api.post(
        "/api/auth/register", data=raw, headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 400, kind="validation-error")
    assert list(body["errors"]) == ["_schema"]


def test_register_malformed_json_and_wrong_content_type(api: Api) -> None:
    malformed = api.post(
        "/api/auth/register", data='{"email": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(malformed, 400, kind="malformed-json")
    form = api.post("/api/auth/register", data={"email": "a@example.com"})
    assert_problem(form, 415)


def test_register_accepts_the_boundaries(api: Api) -> None:
    for n, (username, password) in enumerate(
        [("abc", "8 chars!"), ("a" * 50, "p" * 128), ("a.b", "ünïcødé pässwörd")]
    ):
        response = register(api, email=f"edge{n}@example.com", username=username, password=password)
        assert response.status_code == 201, response.text
        assert login(api, f"edge{n}@example.com", password).status_code == 200


# -- login ----------------------------------------------------------------------------------


def test_login_returns_a_bearer_pair_that_is_never_cached(
    api: Api, app: Flask, make_user: MakeUser
) -> None:
    record, _ = make_user()
    response = login(api, record["email"])
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["Cache-Control"]
    body = response.json()
    assert set(body) == PAIR_FIELDS
    assert body["token_type"] == "Bearer"
    settings = app.extensions["folio"].settings
    assert body["expires_in"] == settings.access_token_ttl
    access = jwt.get_unverified_claims(body["access_token"])
    refresh = jwt.get_unverified_claims(body["refresh_token"])
    assert (access["sub"], access["type"]) == (str(record["id"]), "access")
    assert (refresh["sub"], refresh["type"]) == (str(record["id"]), "refresh")
    assert access["iss"] == refresh["iss"] == settings.jwt_issuer
    assert access["aud"] == refresh["aud"] == settings.jwt_audience
    assert access["exp"] - access["iat"] == settings.access_token_ttl
    assert refresh["exp"] - refresh["iat"] == settings.refresh_token_ttl
    assert access["sid"] == refresh["sid"]  # one login session
    assert access["jti"] != refresh["jti"]
    another = login(api, record["email"]).json()
    assert jwt.get_unverified_claims(another["access_token"])["sid"] != access["sid"]
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    me = api.as_user(body["access_token"]).get("/api/users/me")
    assert me.status_code == 200
    assert me.json()["id"] == record["id"]


def test_wrong_password_and_unknown_email_get_the_same_401(api: Api, make_user: MakeUser) -> None:
    record, _ = make_user()
    wrong_password = login(api, record["email"], "not-the-password")
    unknown_email = login(api, "nobody@example.com")
    malformed_email = login(api, "not an email at all")
    # A NUL was a 500 on PostgreSQL, which refuses it in a query (found by schemathesis).
    nul_email = login(api, record["email"] + "\x00")
    bodies = []
    for response in (wrong_password, unknown_email, malformed_email, nul_email):
        body = assert_unauthorized(response)
        assert "access_token" not in body
        bodies.append({k: v for k, v in body.items() if k not in {"request_id", "instance"}})
        assert set(response.headers) >= {"WWW-Authenticate", "X-Request-ID"}
    assert bodies[0] == bodies[1] == bodies[2] == bodies[3]
    assert wrong_password.headers["WWW-Authenticate"] == unknown_email.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"email": "a@example.com"},
        {"password": "x" * 10},
        {"email": 1, "password": "x"},
        {"email": "a@example.com", "password": "x", "remember": True},
    ],
)
def test_login_with_a_bad_body_is_a_400(api: Api, payload: dict[str, Any]) -> None:
    body = assert_problem(api.post("/api/auth/login", json=payload), 400, kind="validation-error")
    assert body["errors"]


# -- refresh --------------------------------------------------------------------------------


def test_refresh_rotates_the_pair_within_the_same_session(api: Api, make_user: MakeUser) -> None:
    record, _ = make_user()
    old = record["tokens"]
    response = refresh(api, old["refresh_token"])
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["Cache-Control"]
    new = response.json()
    assert set(new) == PAIR_FIELDS
    assert new["token_type"] == "Bearer"
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    sid = jwt.get_unverified_claims(old["access_token"])["sid"]
    for token in (new["access_token"], new["refresh_token"]):
        assert jwt.get_unverified_claims(token)["sid"] == sid
    assert api.as_user(new["access_token"]).get("/api/users/me").json()["id"] == record["id"]
    # The access token of the old pair lives on until it expires; only the refresh is used up.
    assert api.as_user(old["access_token"]).get("/api/users/me").status_code == 200
    newest = assert_session_works(api, new)
    assert_session_works(api, newest)


def test_reusing_a_rotated_refresh_token_ends_the_session(api: Api, make_user: MakeUser) -> None:
    """A replayed refresh token signals theft: the pair rotated from it dies as well."""
    record, _ = make_user()
    stolen = record["tokens"]
    other_session = login(api, record["email"]).json()
    rotated = assert_session_works(api, stolen)  # the owner rotates first
    body = assert_unauthorized(refresh(api, stolen["refresh_token"]))  # the thief replays
    assert "session" in body["detail"]
    assert_session_ended(api, rotated)
    assert_session_ended(api, stolen)
    assert_session_works(api, other_session)


def test_a_refresh_token_used_after_the_session_ended_stays_refused(
    api: Api, make_user: MakeUser
) -> None:
    record, client = make_user()
    rotated = assert_session_works(api, record["tokens"])
    assert client.post("/api/auth/logout").status_code == 204
    assert_session_ended(api, rotated)
    assert_unauthorized(refresh(api, record["tokens"]["refresh_token"]))


def test_an_access_token_is_not_a_refresh_token(api: Api, make_user: MakeUser) -> None:
    record, _ = make_user()
    response = api.post(
        "/api/auth/refresh", json={"refresh_token": record["tokens"]["access_token"]}
    )
    assert_unauthorized(response)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 5000])
def test_refresh_with_a_garbage_token_is_a_401(api: Api, token: str) -> None:
    response = api.post("/api/auth/refresh", json={"refresh_token": token})
    if len(token) > 4096:  # the schema caps the field before any token code runs
        assert_problem(response, 400, kind="validation-error")
    else:
        assert_unauthorized(response)


@pytest.mark.parametrize("payload", [{}, {"refresh_token": ""}, {"refresh_token": 5}, {"x": "y"}])
def test_refresh_with_a_bad_body_is_a_400(api: Api, payload: dict[str, Any]) -> None:
    assert_problem(api.post("/api/auth/refresh", json=payload), 400, kind="validation-error")


def test_concurrent_refreshes_with_one_token_exactly_one_wins(
    make_user: MakeUser, live_server: Any
) -> None:
    record, _ = make_user()
    refresh_token = record["tokens"]["refresh_token"]
    clients = [Api(live_server.url) for _ in range(8)]
    barrier = threading.Barrier(len(clients))
    results: list[requests.Response] = []

    def attempt(client: Api) -> None:
        barrier.wait()
        results.append(client.post("/api/auth/refresh", json={"refresh_token": refresh_token}))

    threads = [threading.Thread(target=attempt, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [200] + [401] * 7
    for response in results:
        if response.status_code == 401:
            assert_unauthorized(response)
    # Seven replays of one refresh token: the session is closed, the winner's pair with it.
    (winner,) = [r.json() for r in results if r.status_code == 200]
    assert_session_ended(Api(live_server.url), winner)


# -- logout ---------------------------------------------------------------------------------


def test_logout_ends_the_session_refresh_token_included(api: Api, make_user: MakeUser) -> None:
    record, client = make_user()
    response = client.post("/api/auth/logout")
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_unauthorized(client.get("/api/users/me"))
    assert_unauthorized(client.post("/api/auth/logout"))
    # No refresh token was sent: the session id revokes the one from the same login anyway.
    assert_unauthorized(refresh(api, record["tokens"]["refresh_token"]))


def test_logout_ends_pairs_rotated_in_that_session(api: Api, make_user: MakeUser) -> None:
    record, client = make_user()
    rotated = assert_session_works(api, record["tokens"])
    newest = assert_session_works(api, rotated)
    assert client.post("/api/auth/logout").status_code == 204  # with the first access token
    assert_session_ended(api, rotated)
    assert_session_ended(api, newest)


def test_logout_leaves_other_sessions_of_the_user_alone(api: Api, make_user: MakeUser) -> None:
    record, client = make_user()
    other_session = login(api, record["email"]).json()
    assert client.post("/api/auth/logout").status_code == 204
    assert_session_ended(api, record["tokens"])
    rotated = assert_session_works(api, other_session)
    assert_session_works(api, rotated)


def test_logout_revocations_last_as_long_as_the_tokens_they_cover(
    app: Flask, make_user: MakeUser
) -> None:
    record, client = make_user()
    access = jwt.get_unverified_claims(record["tokens"]["access_token"])
    assert client.post("/api/auth/logout").status_code == 204
    store = app.extensions["folio"].redis
    refresh_ttl = app.extensions["folio"].settings.refresh_token_ttl
    # A refresh token rotated in this session at this very moment lives refresh_ttl more.
    assert store.ttl(REVOKED_SESSION_PREFIX + access["sid"]) >= refresh_ttl + LEEWAY_SECONDS
    token_ttl = store.ttl(REVOKED_PREFIX + access["jti"])
    assert token_ttl >= access["exp"] + LEEWAY_SECONDS - time.time()


def test_a_token_is_checked_against_both_revocation_lists_in_one_round_trip(
    app: Flask, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, client = make_user()
    claims = jwt.get_unverified_claims(record["tokens"]["access_token"])
    store = app.extensions["folio"].redis
    calls: list[tuple[Any, ...]] = []
    execute = store.execute_command

    def spy(*args: Any, **options: Any) -> Any:
        if any(str(arg).startswith("folio:auth:") for arg in args):
            calls.append(args)
        return execute(*args, **options)

    monkeypatch.setattr(store, "execute_command", spy)
    assert client.get("/api/users/me").status_code == 200
    expected = ("EXISTS", REVOKED_PREFIX + claims["jti"], REVOKED_SESSION_PREFIX + claims["sid"])
    assert calls == [expected]


def test_logout_with_the_refresh_token_revokes_both(api: Api, make_user: MakeUser) -> None:
    record, client = make_user()
    refresh_token = record["tokens"]["refresh_token"]
    response = client.post("/api/auth/logout", json={"refresh_token": refresh_token})
    assert response.status_code == 204, response.text
    assert_unauthorized(client.get("/api/users/me"))
    assert_unauthorized(api.post("/api/auth/refresh", json={"refresh_token": refresh_token}))


def test_logout_with_another_sessions_refresh_token_ends_both(
    api: Api, make_user: MakeUser
) -> None:
    record, client = make_user()
    second = login(api, record["email"]).json()
    third = login(api, record["email"]).json()
    response = client.post("/api/auth/logout", json={"refresh_token": second["refresh_token"]})
    assert response.status_code == 204, response.text
    assert_session_ended(api, record["tokens"])
    assert_session_ended(api, second)
    assert_session_works(api, third)


def test_logout_reads_a_chunked_body_too(api: Api, make_user: MakeUser) -> None:
    """A body without Content-Length (chunked) is not silently ignored."""
    record, client = make_user()
    refresh_token = record["tokens"]["refresh_token"]
    body = json.dumps({"refresh_token": refresh_token}).encode()
    response = client.post(
        "/api/auth/logout", data=iter([body[:10], body[10:]]),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 204, response.text
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert_unauthorized(api.post("/api/auth/refresh", json={"refresh_token": refresh_token}))


def test_logout_body_must_be_json(make_user: MakeUser) -> None:
    record, client = make_user()
    form = client.post(
        "/api/auth/logout", data={"refresh_token": record["tokens"]["refresh_token"]}
    )
    assert_problem(form, 415)
    null = client.post("/api/auth/logout", json={"refresh_token": None})
    assert list(assert_problem(null, 400, kind="validation-error")["errors"]) == ["refresh_token"]
    assert client.get("/api/users/me").status_code == 200


def test_logout_with_a_bad_refresh_token_changes_nothing(api: Api, make_user: MakeUser) -> None:
    record, client = make_user()
    other, _ = make_user()
    for bad in ("not-a-token", record["tokens"]["access_token"], other["tokens"]["refresh_token"]):
        response = client.post("/api/auth/logout", json={"refresh_token": bad})
        body = assert_problem(response, 400, kind="validation-error")
        assert list(body["errors"]) == ["refresh_token"]
    assert client.get("/api/users/me").status_code == 200
    assert_session_works(api, record["tokens"])  # its session was not ended either
    assert_session_works(api, other["tokens"])


def test_logout_accepts_an_already_rotated_refresh_token(api: Api, make_user: MakeUser) -> None:
    record, client = make_user()
    old = record["tokens"]["refresh_token"]
    assert api.post("/api/auth/refresh", json={"refresh_token": old}).status_code == 200
    assert client.post("/api/auth/logout", json={"refresh_token": old}).status_code == 204
    assert_unauthorized(client.get("/api/users/me"))


def test_logout_needs_a_token(api: Api) -> None:
    assert_unauthorized(api.post("/api/auth/logout"))


def test_a_revoked_token_stays_revoked_through_the_expiry_leeway(
    api: Api, app: Flask, make_user: MakeUser
) -> None:
    """A token past ``exp`` but inside the leeway is accepted; its revocation must outlive it."""
    record, _ = make_user()
    backdate_account(app, record["id"])
    tokens = app.extensions["folio"].tokens
    issued = time.time() - tokens.access_ttl - 5  # expired 5 s ago, inside the leeway
    token = tokens.issue(
        user_id=record["id"], token_type="access", session_id=new_session_id(), now=issued
    )
    client = api.as_user(token)
    assert client.get("/api/users/me").status_code == 200
    assert client.post("/api/auth/logout").status_code == 204
    assert_unauthorized(client.get("/api/users/me"))
    time.sleep(1.2)  # a revocation that lasted only until exp (+1 s) is gone by now
    assert_unauthorized(client.get("/api/users/me"))


# -- the JWT attack set on a protected route ------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Target:
    """What a forger knows: the app's settings, and a real user with their tokens."""

    key: str
    issuer: str
    audience: str
    user_id: int
    tokens: dict[str, Any]
    ended_session: str

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "sub": str(self.user_id),
            "type": "access",
            "jti": secrets.token_urlsafe(16),
            "sid": secrets.token_urlsafe(16),
            "iat": now,
            "nbf": now,
            "exp": now + 900,
            "iss": self.issuer,
            "aud": self.audience,
        }
        return {k: v for k, v in (base | overrides).items() if v is not None}

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: str | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps(claims).encode())
        mac = hmac.new((key or self.key).encode(), f"{head}.{body}".encode(), hashlib.sha256)
        return f"{head}.{body}.{b64(mac.digest())}"

    def bearer(self, **overrides: Any) -> str:
        return "Bearer " + self.sign(self.claims(**overrides))


def _alg_none(t: Target, *, keep_signature: bool) -> str:
    token = t.sign(t.claims(), header={"alg": "none", "typ": "JWT"})
    return "Bearer " + (token if keep_signature else token.rsplit(".", 1)[0] + ".")


ATTACKS: dict[str, Callable[[Target], str | None]] = {
    "missing-header": lambda _t: None,
    "empty-header": lambda _t: "",
    "bearer-without-token": lambda _t: "Bearer ",
    "basic-scheme": lambda _t: "Basic " + b64(b"user:password"),
    "token-scheme": lambda t: "Token " + t.tokens["access_token"],
    "no-scheme": lambda t: t.tokens["access_token"],
    "alg-none": lambda t: _alg_none(t, keep_signature=False),
    "alg-none-signed": lambda t: _alg_none(t, keep_signature=True),
    "alg-NONE-upper": lambda t: "Bearer " + t.sign(t.claims(), header={"alg": "NONE"}),
    "hs256-other-key": lambda t: "Bearer " + t.sign(t.claims(), key="another-key-0123456789abcdef"),
    "hs256-guessed-key": lambda t: "Bearer " + t.sign(t.claims(), key="secret"),
    "hs512-right-key": lambda t: "Bearer " + jwt.encode(t.claims(), t.key, algorithm="HS512"),
    "hs384-right-key": lambda t: "Bearer " + jwt.encode(t.claims(), t.key, algorithm="HS384"),
    "header-lies-hs512": lambda t: "Bearer " + t.sign(t.claims(), header={"alg": "HS512"}),
    "signature-stripped": lambda t: "Bearer " + t.sign(t.claims()).rsplit(".", 1)[0] + ".",
    "payload-swapped": lambda t: (
        "Bearer "
        + ".".join(
            [
                t.tokens["access_token"].split(".")[0],
                b64(json.dumps(t.claims(sub="1", type="access")).encode()),
                t.tokens["access_token"].split(".")[2],
            ]
        )
    ),
    "expired": lambda t: t.bearer(
        iat=int(time.time()) - 4000, nbf=int(time.time()) - 4000, exp=int(time.time()) - 3000
    ),
    "expired-beyond-leeway": lambda t: t.bearer(exp=int(time.time()) - 60),
    "future-nbf": lambda t: t.bearer(nbf=int(time.time()) + 120),
    "future-iat": lambda t: t.bearer(iat=int(time.time()) + 120),
    "missing-exp": lambda t: t.bearer(exp=None),
    "missing-iat": lambda t: t.bearer(iat=None),
    "missing-nbf": lambda t: t.bearer(nbf=None),
    "missing-sub": lambda t: t.bearer(sub=None),
    "missing-jti": lambda t: t.bearer(jti=None),
    "missing-sid": lambda t: t.bearer(sid=None),
    "sid-not-a-string": lambda t: t.bearer(sid=1234567890),
    "sid-too-short": lambda t: t.bearer(sid="abc"),
    "sid-of-an-ended-session": lambda t: t.bearer(sid=t.ended_session),
    "missing-iss": lambda t: t.bearer(iss=None),
    "missing-aud": lambda t: t.bearer(aud=None),
    "missing-type": lambda t: t.bearer(type=None),
    "wrong-iss": lambda t: t.bearer(iss="evil-issuer"),
    "wrong-aud": lambda t: t.bearer(aud="another-api"),
    "wrong-type": lambda t: t.bearer(type="admin"),
    "unknown-user": lambda t: t.bearer(sub="999999"),
    "sub-beyond-int32": lambda t: t.bearer(sub="2147483648"),
    "sub-18-digits": lambda t: t.bearer(sub="9" * 18),
    "non-numeric-sub": lambda t: t.bearer(sub="admin"),
    "refresh-as-access": lambda t: "Bearer " + t.tokens["refresh_token"],
    "random-text": lambda _t: "Bearer not-a-jwt-at-all",
    "a.b.c": lambda _t: "Bearer a.b.c",
    "dots-only": lambda _t: "Bearer ..",
    "very-long": lambda _t: "Bearer " + "a" * 6000 + "." + "b" * 6000 + "." + "c" * 100,
    "token-twice": lambda t: "Bearer " + t.tokens["access_token"] + " " + t.tokens["access_token"],
}


@pytest.fixture
def target(app: Flask, api: Api, make_user: MakeUser) -> Target:
    record, _ = make_user()
    backdate_account(app, record["id"])  # forged past iat values then fit the account
    settings = app.extensions["folio"].settings
    ended = login(api, record["email"]).json()
    assert api.as_user(ended["access_token"]).post("/api/auth/logout").status_code == 204
    return Target(
        key=settings.jwt_secret_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        user_id=record["id"],
        tokens=record["tokens"],
        ended_session=jwt.get_unverified_claims(ended["access_token"])["sid"],
    )


def test_a_faithfully_forged_token_is_accepted(api: Api, target: Target) -> None:
    """The control for the attack set: with nothing wrong, the forger's token works."""
    response = api.get("/api/users/me", headers={"Authorization": target.bearer()})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == target.user_id
    old = target.bearer(iat=int(time.time()) - 3600, nbf=int(time.time()) - 3600)
    assert api.get("/api/users/me", headers={"Authorization": old}).status_code == 200


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_jwt_attack_is_a_401_with_a_bearer_challenge(api: Api, target: Target, attack: str) -> None:
    header = ATTACKS[attack](target)
    headers = {} if header is None else {"Authorization": header}
    response = api.get("/api/users/me", headers=headers)
    body = assert_unauthorized(response)
    assert "id" not in body
    assert "private" not in response.headers.get("Cache-Control", "")


def test_a_token_older_than_its_account_is_refused(
    api: Api, app: Flask, make_user: MakeUser
) -> None:
    """Ids can come back (a restored backup): a token from before the account is not its own."""
    record, _ = make_user()
    # Valid for a day, so only its age relative to the account is wrong.
    tokens = dataclasses.replace(
        app.extensions["folio"].tokens, access_ttl=86400, refresh_ttl=86400
    )
    two_hours_ago = time.time() - 7200
    sid = new_session_id()
    old_token = tokens.issue(
        user_id=record["id"], token_type="access", session_id=sid, now=two_hours_ago
    )
    assert_unauthorized(api.as_user(old_token).get("/api/users/me"))
    old_refresh = tokens.issue(
        user_id=record["id"], token_type="refresh", session_id=sid, now=two_hours_ago
    )
    assert_unauthorized(api.post("/api/auth/refresh", json={"refresh_token": old_refresh}))


def test_the_user_count_is_untouched_by_attacks(api: Api, app: Flask, target: Target) -> None:
    for attack in ("alg-none", "hs512-right-key", "wrong-aud"):
        header = ATTACKS[attack](target)
        assert (
            api.patch(
                f"/api/users/{target.user_id}",
                json={"role": "admin"},
                headers={"Authorization": header or ""},
            ).status_code
            == 401
        )
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
        user = db.session.get(User, target.user_id)
        assert user is not None
        assert user.role == "user"
