"""Column types: exact money as cents, aware UTC datetimes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from shared.db import Money, UTCDateTime

SQLITE = sqlite.dialect()
POSTGRES = postgresql.dialect()


@pytest.mark.parametrize(
    ("amount", "cents"),
    [(Decimal("9.99"), 999), (Decimal("0"), 0), (Decimal("10.5"), 1050), (3, 300), (None, None)],
)
def test_money_is_stored_as_integer_cents(amount: Decimal | int | None, cents: int | None) -> None:
    assert Money().process_bind_param(amount, SQLITE) == cents


def test_money_refuses_fractions_of_a_cent() -> None:
    with pytest.raises(ValueError, match="two decimal places"):
        Money().process_bind_param(Decimal("0.001"), SQLITE)


def test_money_reads_back_as_two_place_decimal() -> None:
    assert str(Money().process_result_value(999, SQLITE)) == "9.99"
    assert str(Money().process_result_value(1000, SQLITE)) == "10.00"
    assert Money().process_result_value(None, SQLITE) is None


def test_utc_datetimes_are_naive_utc_on_sqlite_and_aware_on_postgresql() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    moment = dt.datetime(2026, 11, 26, 13, 0, tzinfo=paris)
    column = UTCDateTime()
    assert column.process_bind_param(moment, SQLITE) == dt.datetime(2026, 11, 26, 12, 0)
    assert column.process_bind_param(moment, POSTGRES) == moment.astimezone(dt.UTC)
    assert column.process_bind_param(None, SQLITE) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(dt.datetime(2026, 1, 1), SQLITE)


def test_results_come_back_aware_in_utc() -> None:
    column = UTCDateTime()
    naive = column.process_result_value(dt.datetime(2026, 1, 1, 8), SQLITE)
    assert naive == dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)
    other = dt.datetime(2026, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert column.process_result_value(other, POSTGRES) == naive
    assert column.process_result_value(None, SQLITE) is None
