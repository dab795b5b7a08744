"""``flask --app api <command>``: seed-db, create-user, seed-demo."""

from __future__ import annotations

import time

import click
from flask import Flask
from flask.cli import with_appcontext
from marshmallow import ValidationError
from sqlalchemy import func, select

from api.extensions import folio
from shared.db import db
from shared.errors import Conflict
from shared.models import TIERS, Book, User
from shared.schemas.user import register_schema
from shared.services import seed, users

DEMO_EMAIL = "demo@folio.test"
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - printed by `make run` on purpose


def register(app: Flask) -> None:
    app.cli.add_command(seed_db)
    app.cli.add_command(create_user)
    app.cli.add_command(seed_demo)


@click.command("seed-db")
@with_appcontext
@click.option("--books", "count", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--owner-email", default=None, help="Owner of the new books (default: none).")
def seed_db(count: int, owner_email: str | None) -> None:
    """Insert COUNT realistic books with valid, unique ISBNs."""
    owner_id = None
    if owner_email:
        owner_id = db.session.scalar(select(User.id).where(User.email == owner_email.lower()))
        if owner_id is None:
            raise click.ClickException(f"no user with email {owner_email}")
    started = time.perf_counter()
    inserted = seed.seed_books(db.session, count, owner_id=owner_id)
    db.session.commit()
    click.echo(f"inserted {inserted} books in {time.perf_counter() - started:.1f}s")


@click.command("create-user")
@with_appcontext
@click.option("--email", required=True)
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
@click.option("--tier", type=click.Choice(TIERS), default="free")
def create_user(email: str, username: str, password: str, admin: bool, tier: str) -> None:
    """Create a user without HTTP (the first admin, for instance)."""
    try:
        data = register_schema.load({"email": email, "username": username, "password": password})
    except ValidationError as exc:
        raise click.ClickException(f"invalid input: {exc.normalized_messages()}") from None
    try:
        user = users.register_user(
            db.session, folio().passwords, **data, role="admin" if admin else "user", tier=tier
        )
    except Conflict as exc:
        raise click.ClickException(exc.detail) from None
    db.session.commit()
    click.echo(f"created {user.role} {user.username} (id {user.id})")


@click.command("seed-demo")
@with_appcontext
@click.option("--books", "count", default=200, show_default=True)
def seed_demo(count: int) -> None:
    """First run only: a demo user and a small catalog (does nothing when books exist)."""
    if db.session.scalar(select(func.count(Book.id))):
        click.echo("demo data present")
        return
    demo = db.session.scalar(select(User).where(User.email == DEMO_EMAIL))
    if demo is None:
        demo = users.register_user(
            db.session, folio().passwords,
            email=DEMO_EMAIL, username=DEMO_USERNAME, password=DEMO_PASSWORD,
        )  # fmt: skip
    seed.seed_books(db.session, count, owner_id=demo.id)
    db.session.commit()
    click.echo(f"seeded {count} books owned by {DEMO_EMAIL}")
