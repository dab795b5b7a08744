"""The caller, admin changes to users, deletion, and a user's books, over HTTP (API.md 2, 6b)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from shared.db import db
from shared.models import Book, User
from tests.functional.conftest import PASSWORD, assert_problem, book_payload
from tests.support.live import Api

MakeUser = Callable[..., tuple[dict[str, Any], Api]]
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\Z")
USER_FIELDS = {"id", "email", "username", "role", "tier", "created_at"}


def assert_private(response: Any) -> None:
    assert response.headers["Cache-Control"] == "private, no-cache"


def assert_unauthorized(response: Any) -> None:
    assert_problem(response, 401, kind="unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def create_book(client: Api, title: str) -> dict[str, Any]:
    """A book without an ISBN (so that many can exist), created over HTTP."""
    payload = {k: v for k, v in book_payload(title=title).items() if k != "isbn"}
    response = client.post("/api/books", json=payload)
    assert response.status_code == 201, response.text
    book: dict[str, Any] = response.json()
    return book


def stored_user(app: Flask, user_id: int) -> tuple[str, str] | None:
    with app.app_context():
        user = db.session.get(User, user_id)
        return None if user is None else (user.role, user.tier)


# -- /api/users/me and /api/users/{id} ------------------------------------------------------


def test_me_returns_the_caller_privately(make_user: MakeUser) -> None:
    record, client = make_user()
    response = client.get("/api/users/me")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert_private(response)
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["id"] == record["id"]
    assert body["email"] == record["email"]
    assert body["username"] == record["username"]
    assert (body["role"], body["tier"]) == ("user", "free")
    assert RFC3339_Z.match(body["created_at"])
    created = dt.datetime.fromisoformat(body["created_at"])
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 60
    assert PASSWORD not in response.text


def test_me_shows_an_admin_and_another_tier(make_user: MakeUser) -> None:
    _, client = make_user(role="admin", tier="premium")
    body = client.get("/api/users/me").json()
    assert (body["role"], body["tier"]) == ("admin", "premium")


def test_me_needs_a_token(api: Api) -> None:
    assert_unauthorized(api.get("/api/users/me"))


def test_get_user_by_id_for_self_and_admin_only(make_user: MakeUser) -> None:
    alice, alice_api = make_user()
    bob, bob_api = make_user()
    _, admin_api = make_user(role="admin")
    own = alice_api.get(f"/api/users/{alice['id']}")
    assert own.status_code == 200, own.text
    assert_private(own)
    assert own.json() == alice_api.get("/api/users/me").json()
    by_admin = admin_api.get(f"/api/users/{alice['id']}")
    assert by_admin.status_code == 200
    assert by_admin.json() == own.json()
    assert_private(by_admin)
    assert_problem(bob_api.get(f"/api/users/{alice['id']}"), 403, kind="forbidden")
    assert_problem(alice_api.get(f"/api/users/{bob['id']}"), 403, kind="forbidden")
    assert_problem(admin_api.get("/api/users/999999"), 404, kind="not-found")
    # Permission comes first: a non-admin cannot tell which ids exist.
    assert_problem(alice_api.get("/api/users/999999"), 403, kind="forbidden")
    assert_unauthorized(Api(alice_api.base_url).get(f"/api/users/{alice['id']}"))


# -- PATCH /api/users/{id} ------------------------------------------------------------------


def test_admin_changes_tier_and_the_user_sees_it_with_the_same_token(
    app: Flask, make_user: MakeUser, admin_api: Api
) -> None:
    record, client = make_user()
    response = admin_api.patch(f"/api/users/{record['id']}", json={"tier": "premium"})
    assert response.status_code == 200, response.text
    assert_private(response)
    body = response.json()
    assert set(body) == USER_FIELDS
    assert (body["id"], body["role"], body["tier"]) == (record["id"], "user", "premium")
    assert stored_user(app, record["id"]) == ("user", "premium")
    assert client.get("/api/users/me").json()["tier"] == "premium"
    both = admin_api.patch(f"/api/users/{record['id']}", json={"tier": "standard", "role": "admin"})
    assert (both.json()["role"], both.json()["tier"]) == ("admin", "standard")
    assert stored_user(app, record["id"]) == ("admin", "standard")


def test_a_promotion_and_a_demotion_take_effect_on_the_next_request(
    app: Flask, make_user: MakeUser, admin_api: Api
) -> None:
    alice, alice_api = make_user()
    bob, _ = make_user()
    assert_problem(alice_api.patch(f"/api/users/{bob['id']}", json={"tier": "premium"}), 403)
    promoted = admin_api.patch(f"/api/users/{alice['id']}", json={"role": "admin"})
    assert promoted.status_code == 200
    response = alice_api.patch(f"/api/users/{bob['id']}", json={"tier": "premium"})
    assert response.status_code == 200, response.text
    assert alice_api.get(f"/api/users/{bob['id']}").status_code == 200
    assert stored_user(app, bob["id"]) == ("user", "premium")
    assert admin_api.patch(f"/api/users/{alice['id']}", json={"role": "user"}).status_code == 200
    assert_problem(alice_api.patch(f"/api/users/{bob['id']}", json={"tier": "free"}), 403)
    assert_problem(alice_api.get(f"/api/users/{bob['id']}"), 403)
    assert stored_user(app, bob["id"]) == ("user", "premium")


def test_patch_is_for_admins_only(app: Flask, api: Api, make_user: MakeUser) -> None:
    record, client = make_user()
    body = assert_problem(
        client.patch(f"/api/users/{record['id']}", json={"role": "admin"}), 403, kind="forbidden"
    )
    assert "admin" in body["detail"]
    assert_unauthorized(api.patch(f"/api/users/{record['id']}", json={"role": "admin"}))
    assert stored_user(app, record["id"]) == ("user", "free")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param({"role": "superuser"}, "role", id="unknown-role"),
        pytest.param({"role": "Admin"}, "role", id="role-case"),
        pytest.param({"tier": "gold"}, "tier", id="unknown-tier"),
        pytest.param({"tier": ""}, "tier", id="empty-tier"),
        pytest.param({"role": None}, "role", id="null-role"),
        pytest.param({"tier": 1}, "tier", id="number-tier"),
        pytest.param({"tier": "premium", "email": "x@example.com"}, "email", id="unknown-field"),
        pytest.param({"tier": "premium", "id": 5}, "id", id="read-only-id"),
        pytest.param({}, "_schema", id="empty-object"),
        pytest.param([], "_schema", id="array"),
        pytest.param("premium", "_schema", id="string"),
    ],
)
def test_invalid_patch_is_a_400_and_changes_nothing(
    app: Flask, make_user: MakeUser, admin_api: Api, payload: Any, field: str
) -> None:
    record, _ = make_user()
    response = admin_api.patch(f"/api/users/{record['id']}", json=payload)
    body = assert_problem(response, 400, kind="validation-error")
    assert field in body["errors"]
    assert stored_user(app, record["id"]) == ("user", "free")


def test_patch_of_an_unknown_user_is_a_404(admin_api: Api) -> None:
    assert_problem(admin_api.patch("/api/users/999999", json={"tier": "premium"}), 404)


# -- DELETE /api/users/{id} -----------------------------------------------------------------


def test_deleting_a_user_kills_their_tokens_and_keeps_their_books(
    app: Flask, api: Api, make_user: MakeUser, admin_api: Api
) -> None:
    record, client = make_user()
    book = create_book(client, "Kept After Deletion")
    assert book["owner_id"] == record["id"]
    response = admin_api.delete(f"/api/users/{record['id']}")
    assert response.status_code == 204, response.text
    assert response.content == b""
    # Every token of the deleted user stops working at once.
    assert_unauthorized(client.get("/api/users/me"))
    assert_unauthorized(client.post("/api/books", json=book_payload(isbn=None, title="Nope")))
    refresh = api.post(
        "/api/auth/refresh", json={"refresh_token": record["tokens"]["refresh_token"]}
    )
    assert_unauthorized(refresh)
    assert_unauthorized(
        api.post("/api/auth/login", json={"email": record["email"], "password": PASSWORD})
    )
    # The book stays, without an owner.
    kept = api.get(f"/api/books/{book['id']}")
    assert kept.status_code == 200, kept.text
    assert kept.json()["owner_id"] is None
    assert kept.json()["title"] == "Kept After Deletion"
    with app.app_context():
        assert db.session.get(User, record["id"]) is None
        row = db.session.get(Book, book["id"])
        assert row is not None
        assert row.owner_id is None
    assert_problem(admin_api.get(f"/api/users/{record['id']}"), 404)
    assert_problem(api.get(f"/api/users/{record['id']}/books"), 404)
    assert_problem(admin_api.delete(f"/api/users/{record['id']}"), 404)


def test_a_new_account_with_the_same_email_does_not_inherit_old_tokens(
    api: Api, make_user: MakeUser, admin_api: Api
) -> None:
    record, client = make_user()
    assert admin_api.delete(f"/api/users/{record['id']}").status_code == 204
    again = api.post(
        "/api/auth/register",
        json={"email": record["email"], "username": record["username"], "password": PASSWORD},
    )
    assert again.status_code == 201, again.text
    assert again.json()["id"] != record["id"]
    assert_unauthorized(client.get("/api/users/me"))


def test_delete_is_for_admins_only(app: Flask, api: Api, make_user: MakeUser) -> None:
    alice, alice_api = make_user()
    bob, _ = make_user()
    assert_problem(alice_api.delete(f"/api/users/{bob['id']}"), 403, kind="forbidden")
    assert_problem(alice_api.delete(f"/api/users/{alice['id']}"), 403, kind="forbidden")
    assert_unauthorized(api.delete(f"/api/users/{bob['id']}"))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 2


def test_delete_of_an_unknown_user_is_a_404(admin_api: Api) -> None:
    assert_problem(admin_api.delete("/api/users/999999"), 404, kind="not-found")


# -- GET /api/users/{id}/books --------------------------------------------------------------


def test_a_users_books_are_listed_like_the_catalog(api: Api, make_user: MakeUser) -> None:
    alice, alice_api = make_user()
    bob, bob_api = make_user()
    carol, _ = make_user()
    mine = [create_book(alice_api, f"Alice Book {n}") for n in range(3)]
    theirs = create_book(bob_api, "Bob Book")
    first = api.get(f"/api/users/{alice['id']}/books", params={"per_page": 2})
    assert first.status_code == 200, first.text
    body = first.json()
    assert [b["id"] for b in body["items"]] == [mine[0]["id"], mine[1]["id"]]
    assert all(b["owner_id"] == alice["id"] for b in body["items"])
    pagination = body["pagination"]
    assert pagination["total_items"] == 3
    assert pagination["total_pages"] == 2
    assert (pagination["page"], pagination["per_page"]) == (1, 2)
    assert pagination["has_next"] is True
    assert pagination["has_prev"] is False
    assert 'rel="next"' in first.headers["Link"]
    assert first.headers["Cache-Control"] == "no-cache"  # a public catalog read
    etag = first.headers["ETag"]
    again = api.get(
        f"/api/users/{alice['id']}/books", params={"per_page": 2}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    assert f"/api/users/{alice['id']}/books" in body["links"]["next"]
    second = api.get(f"/api/users/{alice['id']}/books", params={"per_page": 2, "page": 2})
    assert [b["id"] for b in second.json()["items"]] == [mine[2]["id"]]
    bobs = api.get(f"/api/users/{bob['id']}/books").json()
    assert [b["id"] for b in bobs["items"]] == [theirs["id"]]
    assert bobs["pagination"]["total_items"] == 1
    empty = api.get(f"/api/users/{carol['id']}/books")
    assert empty.status_code == 200
    assert empty.json()["items"] == []
    assert empty.json()["pagination"]["total_items"] == 0


def test_a_users_books_reflect_a_new_book_at_once(api: Api, make_user: MakeUser) -> None:
    record, client = make_user()
    path = f"/api/users/{record['id']}/books"
    assert api.get(path).json()["pagination"]["total_items"] == 0
    book = create_book(client, "Fresh")
    assert [b["id"] for b in api.get(path).json()["items"]] == [book["id"]]


def test_books_of_an_unknown_user_are_a_404(api: Api) -> None:
    assert_problem(api.get("/api/users/999999/books"), 404, kind="not-found")


@pytest.mark.parametrize("user_id", ["0", "2147483648", "99999999999999999999999"])
def test_ids_out_of_range_are_a_plain_404(api: Api, admin_api: Api, user_id: str) -> None:
    assert_problem(admin_api.get(f"/api/users/{user_id}"), 404)
    assert_problem(admin_api.patch(f"/api/users/{user_id}", json={"tier": "premium"}), 404)
    assert_problem(admin_api.delete(f"/api/users/{user_id}"), 404)
    assert_problem(api.get(f"/api/users/{user_id}/books"), 404)
