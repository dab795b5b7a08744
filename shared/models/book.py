"""A book in the catalog.

Full-text search lives beside the table and is created by the migration, per dialect:
an FTS5 table ``books_fts`` kept in step by triggers on SQLite, and a generated
``search_vector`` column with a GIN index on PostgreSQL. Neither is mapped here.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Money, UTCDateTime, db, utcnow

GENRES = ("Fiction", "Non-Fiction", "Science", "History")


class Book(db.Model):  # type: ignore[name-defined]
    __tablename__ = "books"
    __table_args__ = (
        # Keyset pagination walks (sort column, id) for every sortable column.
        Index("ix_books_title_id", "title", "id"),
        Index("ix_books_published_year_id", "published_year", "id"),
        Index("ix_books_price_id", "price", "id"),
        Index("ix_books_created_at_id", "created_at", "id"),
        Index("ix_books_genre_id", "genre", "id"),
        Index("ix_books_owner_id_id", "owner_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(100))
    isbn: Mapped[str | None] = mapped_column(String(13), unique=True)
    published_year: Mapped[int | None] = mapped_column(Integer)
    genre: Mapped[str | None] = mapped_column(String(20))
    price: Mapped[Decimal | None] = mapped_column(Money())
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Book {self.id} {self.title!r}>"


# The ``author`` filter matches case-insensitively.
Index("ix_books_author_lower", func.lower(Book.author))
