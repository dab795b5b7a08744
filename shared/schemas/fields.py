"""Fields that Folio's rules need and marshmallow does not ship."""

from __future__ import annotations

import decimal
from typing import Any

from marshmallow import ValidationError, fields

from shared.isbn import normalize_isbn


class TrimmedString(fields.String):
    """A string with surrounding whitespace removed before its validators run."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class Isbn(fields.String):
    """ISBN-10 or ISBN-13 with a valid check digit; hyphens and spaces are dropped."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        isbn = normalize_isbn(raw) if len(raw) <= 40 else None
        if isbn is None:
            raise ValidationError("Not a valid ISBN-10 or ISBN-13.")
        return isbn


class StrictInteger(fields.Integer):
    """An integer that refuses ``true``/``false`` and ``4.5`` instead of coercing them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
            value = int(value)
        return super()._deserialize(value, attr, data, **kwargs)


class Money(fields.Decimal):
    """An exact amount with at most two decimals, never rounded on input.

    JSON numbers arrive as ``Decimal`` (the app's JSON provider parses them so), so
    ``9.99`` stays exactly 9.99. Output is a JSON number.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | str | decimal.Decimal):
            raise self.make_error("invalid")
        if isinstance(value, float):  # parsed elsewhere than our JSON provider
            value = repr(value)
        amount = super()._deserialize(value, attr, data, **kwargs)
        if amount != amount.quantize(decimal.Decimal("0.01"), rounding=decimal.ROUND_DOWN):
            raise ValidationError("Must have at most 2 decimal places.")
        return amount.quantize(decimal.Decimal("0.01"))

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else float(value)
