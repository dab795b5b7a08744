"""Users and books, with full-text search per dialect.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

SQLite gets an external-content FTS5 table kept in step by triggers; PostgreSQL a
generated tsvector column (title weighted above author) with a GIN index. Both use
plain word splitting without stemming, so that prefix matching means the same on both.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("username", sa.String(50), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)
    op.create_table(
        "books",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("author_key", sa.String(400), nullable=False),  # NFKC + casefold of author
        sa.Column("isbn", sa.String(13), nullable=True),  # as sent, without separators
        # Canonical ISBN-13 (an ISBN-10 converted): unique, so that both forms of one
        # book cannot be stored; set exactly when isbn is.
        sa.Column("isbn13", sa.String(13), nullable=True),
        sa.Column("published_year", sa.Integer(), nullable=True),
        sa.Column("genre", sa.String(20), nullable=True),
        sa.Column("price", sa.Integer(), nullable=True),  # cents: exact money
        sa.Column(
            "owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.UniqueConstraint("isbn13", name="uq_books_isbn13"),
        sa.CheckConstraint("(isbn IS NULL) = (isbn13 IS NULL)", name="ck_books_isbn13_with_isbn"),
        sqlite_autoincrement=True,
    )
    for column in ("title", "published_year", "price", "created_at", "genre", "owner_id"):
        op.create_index(f"ix_books_{column}_id", "books", [column, "id"])
    op.create_index("ix_books_author_key", "books", ["author_key"])
    if op.get_context().dialect.name == "sqlite":
        _sqlite_fts()
    else:
        _postgresql_fts()


def _sqlite_fts():
    op.execute(
        "CREATE VIRTUAL TABLE books_fts USING fts5("
        "title, author, content='books', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 0')"
    )
    op.execute(
        "CREATE TRIGGER books_fts_insert AFTER INSERT ON books BEGIN "
        "INSERT INTO books_fts(rowid, title, author) VALUES (new.id, new.title, new.author); END"
    )
    op.execute(
        "CREATE TRIGGER books_fts_delete AFTER DELETE ON books BEGIN "
        "INSERT INTO books_fts(books_fts, rowid, title, author) "
        "VALUES ('delete', old.id, old.title, old.author); END"
    )
    op.execute(
        "CREATE TRIGGER books_fts_update AFTER UPDATE OF title, author ON books BEGIN "
        "INSERT INTO books_fts(books_fts, rowid, title, author) "
        "VALUES ('delete', old.id, old.title, old.author); "
        "INSERT INTO books_fts(rowid, title, author) VALUES (new.id, new.title, new.author); END"
    )


def _postgresql_fts():
    op.execute(
        "ALTER TABLE books ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
        "setweight(to_tsvector('simple', coalesce(author, '')), 'B')) STORED"
    )
    op.execute("CREATE INDEX ix_books_search_vector ON books USING gin (search_vector)")


def downgrade():
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS books_fts")
    op.drop_table("books")
    op.drop_table("users")
