"""Book views: the count behind ``GET /api/books/popular``, and the flushes' fence.

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
    op.create_table(
        "view_flushes",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("flushed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_view_flushes_flushed_at", "view_flushes", ["flushed_at"])


def downgrade():
    op.drop_table("view_flushes")
    op.drop_index("ix_books_views_id", table_name="books")
    op.drop_column("books", "views")
