"""Accounts: registration, login, role and tier changes, deletion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from shared.db import MAX_ID, DbSession
from shared.errors import AuthenticationFailed, Conflict, NotFound, PermissionDenied
from shared.models import Book, User
from shared.security.passwords import Passwords

# A plain session, or Flask-SQLAlchemy's ``db.session`` (a scoped session) as views pass it.


def register_user(
    session: DbSession, passwords: Passwords, *, email: str, username: str, password: str,
    role: str = "user", tier: str = "free",
) -> User:  # fmt: skip
    """Create a user; ``Conflict`` when the email or the username (any case) is taken."""
    email = email.lower()
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("A user with this email already exists.")
    taken = select(User.id).where(func.lower(User.username) == username.lower())
    if session.scalar(taken) is not None:
        raise Conflict("A user with this username already exists.")
    user = User(
        email=email, username=username, password_hash=passwords.hash(password),
        role=role, tier=tier,
    )  # fmt: skip
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # a concurrent registration won the race
        raise Conflict("A user with this email or username already exists.") from None
    return user


def authenticate(session: DbSession, passwords: Passwords, *, email: str, password: str) -> User:
    """The user with these credentials; one and the same failure for every wrong input."""
    email = email.strip().lower()
    # No stored email holds a NUL, and PostgreSQL refuses one in a query (a 500).
    user = None if "\x00" in email else session.scalar(select(User).where(User.email == email))
    hash_ = user.password_hash if user is not None else None
    if not passwords.verify(password_hash=hash_, password=password) or user is None:
        raise AuthenticationFailed("The email or password is incorrect.")
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
    return user


def find_user(session: DbSession, user_id: int) -> User | None:
    """The user with this id, or None; ids the column cannot hold are simply absent."""
    if not 0 < user_id <= MAX_ID:  # PostgreSQL raises "integer out of range" instead
        return None
    return session.get(User, user_id)


def get_user(session: DbSession, user_id: int) -> User:
    user = find_user(session, user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    return user


def readable_user(session: DbSession, *, actor: User, user_id: int) -> User:
    """The user ``actor`` may read: themself, or anyone for an admin.

    Permission comes before existence, so a non-admin cannot probe which ids exist.
    """
    if user_id != actor.id and not actor.is_admin:
        raise PermissionDenied("You may only read your own account.")
    return get_user(session, user_id)


def update_user(session: DbSession, user_id: int, changes: dict[str, Any]) -> User:
    """Change a user's role and/or tier (admin operation)."""
    user = get_user(session, user_id)
    for key in ("role", "tier"):
        if key in changes:
            setattr(user, key, changes[key])
    session.flush()
    return user


def delete_user(session: DbSession, user_id: int) -> None:
    """Delete a user; their books stay in the catalog without an owner."""
    user = get_user(session, user_id)
    # Explicit as well as ON DELETE SET NULL, so that no backend setting can lose books.
    session.execute(update(Book).where(Book.owner_id == user.id).values(owner_id=None))
    session.delete(user)
    session.flush()
