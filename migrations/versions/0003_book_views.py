"""Book views: the count behind ``GET /api/books/popular``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Views are counted in Redis on each read and added here by beat (no write per read).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN on both dialects (a batch copy would drop SQLite's FTS triggers).
    op.add_column("books", sa.Column("views", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_index("ix_books_views_id", "books", ["views", "id"])


def downgrade():
    op.drop_index("ix_books_views_id", table_name="books")
    op.drop_column("books", "views")
