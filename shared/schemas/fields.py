"""Fields that Folio's rules need and marshmallow does not ship."""

from __future__ import annotations

import decimal
import unicodedata
from typing import Any

from marshmallow import ValidationError, fields

from shared.isbn import normalize_isbn

# Integers and amounts beyond this many digits are refused before any arithmetic:
# ``int(Decimal("1e999999999"))`` would build a billion-digit number, and quantizing a
# huge amount raises ``decimal.InvalidOperation`` (a 500) instead of a validation error.
MAX_DIGITS = 15
# How every output schema writes a time: UTC, to the second.
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"


class TrimmedString(fields.String):
    """A string with surrounding whitespace removed before its validators run.

    Control characters (NUL above all: PostgreSQL refuses it in text, a 500) and lone
    surrogates (not encodable as UTF-8) are refused.
    """

    default_error_messages = {"control": "Must not contain control characters."}  # noqa: RUF012

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if any(unicodedata.category(char) in {"Cc", "Cs"} for char in text):
            raise self.make_error("control")
        return text


class Isbn(fields.String):
    """ISBN-10 or ISBN-13 with a valid check digit; hyphens and spaces are dropped."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        isbn = normalize_isbn(raw) if len(raw) <= 40 else None
        if isbn is None:
            raise ValidationError("Not a valid ISBN-10 or ISBN-13.")
        return isbn


class StrictInteger(fields.Integer):
    """An integer that refuses ``true``/``false``, ``4.5`` and ``"4"`` instead of coercing.

    A JSON number with an integral value (``1949.0``, ``1.949e3``) is an integer.
    """

    default_error_messages = {"too_large": "Number too large."}  # noqa: RUF012

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, decimal.Decimal) and value.is_finite():
            if value.adjusted() >= MAX_DIGITS:
                raise self.make_error("too_large")
            if value == value.to_integral_value():
                value = int(value)
        return super()._deserialize(value, attr, data, **kwargs)


class Money(fields.Decimal):
    """An exact amount with at most two decimals, never rounded on input.

    Only JSON numbers are accepted (``"9.99"`` is refused, as ``"1949"`` is for a year).
    JSON numbers arrive as ``Decimal`` (the app's JSON provider parses them so), so
    ``9.99`` stays exactly 9.99; a ``float`` (from a caller that parsed JSON with the
    standard library) is read through its shortest ``repr``. Output is a JSON number.
    """

    default_error_messages = {  # noqa: RUF012
        "places": "Must have at most 2 decimal places.",
        "too_large": "Number too large.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            raise self.make_error("invalid")
        if isinstance(value, float):
            value = repr(value)
        amount: decimal.Decimal = super()._deserialize(value, attr, data, **kwargs)
        if amount.adjusted() >= MAX_DIGITS:
            raise self.make_error("too_large")
        if not _at_most_two_places(amount):
            raise self.make_error("places")
        # ``+ 0`` turns -0.00 into 0.00, which would otherwise be written out as -0.0.
        return amount.quantize(decimal.Decimal("0.01")) + 0

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else float(value)


def _at_most_two_places(amount: decimal.Decimal) -> bool:
    """``9.99`` and ``9.990`` yes, ``9.999`` no (read from the digits: no rounding)."""
    _, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):  # NaN or Infinity
        return False
    extra = -2 - exponent
    return extra <= 0 or not any(digits[-extra:])
