"""JSON in and out: exact decimals in, numbers out, hostile nesting refused."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask.json.provider import DefaultJSONProvider


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class FolioJSONProvider(DefaultJSONProvider):
    """Parse floats as ``Decimal`` so that money stays exact, and never crash on input.

    ``json.loads`` raises ``RecursionError`` on deeply nested arrays; Flask only turns
    ``ValueError`` into a 400, so the recursion error is converted here.
    """

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return json.loads(s, parse_float=Decimal, parse_constant=_no_constants, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
