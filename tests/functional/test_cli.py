"""`flask --app api ...` commands against the real databases."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from shared.db import db
from shared.isbn import normalize_isbn
from shared.models import GENRES, Book, User
from tests.support.live import Api


def test_seed_db_inserts_realistic_books_with_valid_unique_isbns(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["seed-db", "--books", "1200"])
    assert result.exit_code == 0, result.output
    assert "inserted 1200 books" in result.output
    with app.app_context():
        books = db.session.scalars(select(Book)).all()
    assert len(books) == 1200
    isbns = [b.isbn for b in books]
    assert len(set(isbns)) == 1200
    assert all(isbn is not None and normalize_isbn(isbn) == isbn for isbn in isbns)
    assert all(b.genre in GENRES and 1850 <= (b.published_year or 0) <= 2025 for b in books)
    assert len({b.author for b in books}) > 50
    assert all(b.price is not None and b.price == b.price.quantize(b.price) for b in books)


def test_seed_db_twice_adds_more_without_isbn_clashes(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-db", "--books", "300"]).exit_code == 0
    assert runner.invoke(args=["seed-db", "--books", "300"]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(Book.id))) == 600


def test_seed_db_can_give_the_books_an_owner(app: Flask) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=["create-user", "--email", "o@example.com", "--username", "owner",
              "--password", "password123"]
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    result = runner.invoke(args=["seed-db", "--books", "5", "--owner-email", "O@example.com"])
    assert result.exit_code == 0, result.output
    unknown = runner.invoke(args=["seed-db", "--books", "5", "--owner-email", "x@example.com"])
    assert unknown.exit_code != 0
    assert "no user with email" in unknown.output
    with app.app_context():
        owner_ids = set(db.session.scalars(select(Book.owner_id)))
        owner = db.session.scalar(select(User).where(User.email == "o@example.com"))
    assert owner is not None
    assert owner_ids == {owner.id}


def test_create_user_admin_can_log_in_and_act_as_admin(app: Flask, api: Api) -> None:
    result = app.test_cli_runner().invoke(
        args=["create-user", "--admin", "--email", "Root@Example.com", "--username", "root",
              "--password", "password123", "--tier", "premium"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "created admin root" in result.output
    login = api.post(
        "/api/auth/login", json={"email": "root@example.com", "password": "password123"}
    )
    assert login.status_code == 200
    me = api.as_user(login.json()["access_token"]).get("/api/users/me").json()
    assert (me["role"], me["tier"], me["email"]) == ("admin", "premium", "root@example.com")


def test_create_user_refuses_duplicates_and_invalid_input(app: Flask) -> None:
    runner = app.test_cli_runner()
    args = ["create-user", "--email", "a@example.com", "--username", "alice",
            "--password", "password123"]  # fmt: skip
    assert runner.invoke(args=args).exit_code == 0
    again = runner.invoke(args=args)
    assert again.exit_code != 0
    assert "already exists" in again.output
    bad = runner.invoke(args=["create-user", "--email", "nope", "--username", "x",
                              "--password", "short"])  # fmt: skip
    assert bad.exit_code != 0
    assert "invalid input" in bad.output
    assert "password" in bad.output


def test_seed_demo_runs_once(app: Flask, api: Api) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo", "--books", "25"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["seed-demo", "--books", "25"])
    assert "demo data present" in second.output
    assert api.get("/api/books").json()["pagination"]["total_items"] == 25
    login = api.post(
        "/api/auth/login", json={"email": "demo@folio.test", "password": "demo-password"}
    )
    assert login.status_code == 200
