"""The migrations build exactly what the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import text

from shared.db import db, include_in_autogenerate

# SQLAlchemy cannot reflect the expression index on lower(username), and says so.
# Alembic skips it with a warning too, so it is compared by hand below.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Skipped unsupported reflection"),
    pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression"),
]


def test_models_and_migrations_agree(app: Flask) -> None:
    """``flask db migrate`` on a migrated database would write an empty migration."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_in_autogenerate, "compare_type": True}
        )
        assert compare_metadata(context, db.metadata) == []


def test_the_search_objects_exist_but_are_left_to_the_migrations(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, db.metadata)
        dialect = db.engine.dialect.name
    removed = {str(d[1].name) for d in differences if d[0] in {"remove_table", "remove_index"}}
    removed |= {str(d[3].name) for d in differences if d[0] == "remove_column"}
    if dialect == "sqlite":
        assert "books_fts" in removed
    else:
        assert {"search_vector", "ix_books_search_vector"} <= removed


def test_usernames_are_unique_whatever_their_case_in_the_database(app: Flask) -> None:
    """The expression index that autogenerate cannot compare exists and is unique."""
    with app.app_context(), db.engine.connect() as connection:
        if db.engine.dialect.name == "sqlite":
            sql = "SELECT sql FROM sqlite_master WHERE name = 'uq_users_username_lower'"
        else:
            sql = "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_users_username_lower'"
        definition = connection.execute(text(sql)).scalar_one()
    assert "UNIQUE" in definition.upper()
    assert "lower(" in definition.lower()
