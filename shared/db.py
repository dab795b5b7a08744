"""The SQLAlchemy handle shared by web and worker, and the column types Folio needs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import simplejson
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Dialect, Engine, event
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session
from sqlalchemy.types import DateTime, Integer, TypeDecorator

if TYPE_CHECKING:
    from flask import Flask

    from shared.config import Settings

CENT = Decimal("0.01")
# Ids are INTEGER columns: 32 bits on PostgreSQL, which raises "integer out of range"
# (a 500) for a larger literal, where a lookup should simply find nothing.
MAX_ID = 2**31 - 1


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

# What services accept: a plain Session or Flask-SQLAlchemy's scoped ``db.session``.
DbSession = Session | scoped_session[Any]


def init_db(app: Flask, settings: Settings) -> None:
    """Bind ``db`` to ``app`` (web or worker) with the engine options Folio relies on."""
    app.config["SQLALCHEMY_DATABASE_URI"] = settings.database_url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(settings)
    _ensure_sqlite_folder(settings)
    db.init_app(app)


def _engine_options(settings: Settings) -> dict[str, object]:
    # JSON columns keep exact decimals: a price in an import's params is judged as sent.
    json_options = {"json_serializer": json_dumps, "json_deserializer": json_loads}
    if settings.is_sqlite:
        return {"connect_args": {"timeout": 10}, **json_options}
    # connect_timeout: an unreachable host is a 503 in seconds, not a hung worker.
    return {
        "pool_pre_ping": True, "pool_size": 5, "max_overflow": 10, "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 3}, **json_options,
    }  # fmt: skip


def json_dumps(value: Any) -> str:
    """JSON with ``Decimal`` written as the exact number it holds."""
    return simplejson.dumps(value, use_decimal=True)


def json_loads(text: str | bytes) -> Any:
    """JSON with fractional numbers read as ``Decimal`` (exact, as the API parses them)."""
    return simplejson.loads(text, use_decimal=True)


def _ensure_sqlite_folder(settings: Settings) -> None:
    prefix = "sqlite:///"
    if settings.database_url.startswith(prefix):
        path = settings.database_url[len(prefix) :]
        if path and not path.startswith(":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Money(TypeDecorator[Decimal]):
    """Exact money: stored as integer cents, read back as a two-place ``Decimal``."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        cents = Decimal(value) * 100
        if cents != cents.to_integral_value():
            raise ValueError(f"{value} has more than two decimal places")
        return int(cents)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return (Decimal(value) / 100).quantize(CENT)


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL for concurrent readers, enforced foreign keys, and a busy wait over SQLITE_BUSY."""
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def include_in_autogenerate(
    _object: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any
) -> bool:
    """Alembic filter: leave out the search objects that migrations make per dialect.

    The FTS5 table on SQLite and the ``search_vector`` column and its GIN index on
    PostgreSQL are not mapped; without this filter ``flask db migrate`` would propose
    dropping them, and search with them.
    """
    if type_ == "table" and (name or "").startswith("books_fts"):
        return False
    return not (type_ == "column" and name == "search_vector") and not (
        type_ == "index" and name == "ix_books_search_vector"
    )
