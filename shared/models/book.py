"""A book in the catalog.

Full-text search lives beside the table and is created by the migration, per dialect:
an FTS5 table ``books_fts`` kept in step by triggers on SQLite, and a generated
``search_vector`` column with a GIN index on PostgreSQL. Neither is mapped here.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, validates

from shared.db import Money, UTCDateTime, db, utcnow
from shared.isbn import to_isbn13

GENRES = ("Fiction", "Non-Fiction", "Science", "History")
# The constraint that makes an ISBN unique across its ISBN-10 and ISBN-13 forms; the
# services recognize its violation by this name (PostgreSQL) or by its column (SQLite).
ISBN_UNIQUE = "uq_books_isbn13"


def author_key(author: str) -> str:
    """The form the ``author`` filter compares: NFKC, then Unicode case folding.

    Databases disagree on case beyond ASCII (SQLite's ``lower()`` leaves ``É`` alone,
    PostgreSQL's depends on the locale), so the key is computed here, once, on write.
    """
    return unicodedata.normalize("NFKC", author).casefold()


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
        Index("ix_books_views_id", "views", "id"),  # the most viewed (popular books)
        UniqueConstraint("isbn13", name=ISBN_UNIQUE),
        CheckConstraint("(isbn IS NULL) = (isbn13 IS NULL)", name="ck_books_isbn13_with_isbn"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(100))
    author_key: Mapped[str] = mapped_column(String(400), index=True)
    isbn: Mapped[str | None] = mapped_column(String(13))  # as sent, without separators
    isbn13: Mapped[str | None] = mapped_column(String(13))  # canonical form, unique
    published_year: Mapped[int | None] = mapped_column(Integer)
    genre: Mapped[str | None] = mapped_column(String(20))
    price: Mapped[Decimal | None] = mapped_column(Money())
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Views counted in Redis and added by beat (``shared.services.popular``).
    views: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    @validates("author")
    def _keep_author_key(self, _key: str, value: str) -> str:
        self.author_key = author_key(value)
        return value

    @validates("isbn")
    def _keep_isbn13(self, _key: str, value: str | None) -> str | None:
        self.isbn13 = None if value is None else to_isbn13(value)
        return value

    def __repr__(self) -> str:
        return f"<Book {self.id} {self.title!r}>"
