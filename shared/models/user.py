"""A person who can log in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, db, utcnow

ROLES = ("user", "admin")
TIERS = ("free", "standard", "premium")


class User(db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"
    # AUTOINCREMENT: SQLite would otherwise hand a deleted user's id to the next
    # registration, and the old tokens (``sub`` = id) would work for the new account.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    username: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    tier: Mapped[str] = mapped_column(String(16), default="free")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username}>"


# Usernames are unique whatever their case.
Index("uq_users_username_lower", func.lower(User.username), unique=True)
