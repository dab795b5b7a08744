"""Realistic demo data, inserted fast: Core bulk inserts in batches."""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from shared.db import DbSession, utcnow
from shared.isbn import isbn13_check_digit, to_isbn13
from shared.models import GENRES, Book, author_key

BATCH = 5000
_ADJECTIVES = (
    "Silent", "Hidden", "Broken", "Golden", "Last", "Lost", "Forgotten", "Crimson", "Distant",
    "Burning", "Secret", "Endless", "Quiet", "Wild", "Northern", "Winter", "Glass", "Iron",
    "Paper", "Hollow", "Bright", "Long", "Final", "Little", "Invisible", "Strange", "Ancient",
)  # fmt: skip
_NOUNS = (
    "River", "Garden", "Kingdom", "Witness", "Harbor", "Orchard", "Empire", "Mirror", "Voyage",
    "Library", "Mountain", "Daughter", "Storm", "Bridge", "Lighthouse", "Atlas", "Theory",
    "Archive", "Machine", "Frontier", "Memory", "Island", "Citadel", "Compass", "Season",
)  # fmt: skip
_PATTERNS = (
    "The {adj} {noun}", "{noun} of the {adj} {noun2}", "The {noun} in the {noun2}",
    "The {noun}'s {noun2}", "{adj} {noun}s", "Beyond the {noun}", "A History of the {noun}",
)  # fmt: skip
_FIRST = (
    "Ada", "Miguel", "Chen", "Amara", "Olga", "Tomas", "Priya", "Kwame", "Elena", "Hiro",
    "Sofia", "Jonas", "Leila", "Mateo", "Nadia", "Oscar", "Ingrid", "Rafael", "Yuki", "Zara",
)  # fmt: skip
_LAST = (
    "Okafor", "Lindqvist", "Moreau", "Castillo", "Novak", "Haddad", "Tanaka", "Kowalski",
    "Fitzgerald", "Abara", "Ivanova", "Silva", "Brennan", "Achebe", "Rossi", "Nakamura",
    "Petrov", "Gallagher", "Mensah", "Dubois", "Varga", "Oyelaran", "Sato", "Keller",
)  # fmt: skip


def generate_books(
    count: int, *, start: int, owner_id: int | None, seed: int
) -> Iterator[dict[str, Any]]:
    """``count`` plausible books; ISBN-13s are unique for distinct ``start + i``."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    now = utcnow()
    for i in range(count):
        body = f"979{(start + i) % 10**9:09d}"
        title = rng.choice(_PATTERNS).format(
            adj=rng.choice(_ADJECTIVES), noun=rng.choice(_NOUNS), noun2=rng.choice(_NOUNS)
        )
        author = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        isbn = body + isbn13_check_digit(body)
        # Core inserts skip the model's validators: set what they would derive.
        yield {
            "title": title,
            "author": author,
            "author_key": author_key(author),
            "isbn": isbn,
            "isbn13": to_isbn13(isbn),
            "published_year": rng.randint(1850, 2025),
            "genre": rng.choice(GENRES),
            "price": Decimal(rng.randint(199, 6999)) / 100,
            "owner_id": owner_id,
            "created_at": now,
            "updated_at": now,
        }


def seed_books(
    session: DbSession, count: int, *, owner_id: int | None = None, seed: int = 7
) -> int:
    """Insert ``count`` generated books (ISBN clashes are skipped); returns rows inserted."""
    start = (session.scalar(select(Book.id).order_by(Book.id.desc()).limit(1)) or 0) + 1
    dialect = session.get_bind().dialect.name
    books = Book.__table__
    statement: Any = insert(books)
    if dialect == "sqlite":
        statement = sqlite.insert(books).on_conflict_do_nothing()
    elif dialect == "postgresql":
        statement = postgresql.insert(books).on_conflict_do_nothing()
    connection = session.connection()
    before = session.scalar(select(func.count(Book.id))) or 0
    batch = []
    for row in generate_books(count, start=start, owner_id=owner_id, seed=seed + start):
        batch.append(row)
        if len(batch) == BATCH:
            connection.execute(statement, batch)
            batch = []
    if batch:
        connection.execute(statement, batch)
    # rowcount of an executemany is -1 on psycopg; count instead.
    return (session.scalar(select(func.count(Book.id))) or 0) - before
