"""JSON in and out: exact decimals in, and hostile input refused before it reaches a view.

Every refusal is a ``ValueError``, which the request class turns into a 400
``/problems/malformed-json``. The limits follow I-JSON (RFC 7493) loosely.
"""

from __future__ import annotations

import itertools
import json
import re
from decimal import Decimal
from typing import Any

import simplejson
from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 32  # arrays and objects inside each other; real payloads use 4
MAX_NUMBER_LENGTH = 100  # characters of one number literal
# The magnitude of an IEEE 754 double: nobody needs more, and converting
# Decimal("1e999999999") to an int alone would take minutes of CPU.
MAX_EXPONENT = 308
# A UTF-16 surrogate escape: the parser joins a valid pair into one character, but a lone
# one stays a lone surrogate, which cannot be encoded as UTF-8 (a 500 when stored).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _integer(literal: str) -> int:
    if len(literal) > MAX_NUMBER_LENGTH:
        raise ValueError(f"a number has more than {MAX_NUMBER_LENGTH} digits")
    return int(literal)


def _decimal(literal: str) -> Decimal:
    if len(literal) > MAX_NUMBER_LENGTH:
        raise ValueError(f"a number has more than {MAX_NUMBER_LENGTH} characters")
    value = Decimal(literal)
    if value.adjusted() > MAX_EXPONENT:
        raise ValueError(f"the number {literal} is larger than 1e{MAX_EXPONENT}")
    return value


def _check_string(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string contains an unpaired UTF-16 surrogate") from None


def _inspect(value: Any) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` and strings with a lone surrogate.

    Iterative, so that checking a hostile document cannot exhaust the stack itself.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
            children = (
                itertools.chain(item.keys(), item.values()) if isinstance(item, dict) else item
            )
            stack.extend((child, depth + 1) for child in children)


class FolioJSONProvider(DefaultJSONProvider):
    """Parse floats as ``Decimal`` so that money stays exact, and never crash on input.

    ``json.loads`` raises ``RecursionError`` on deeply nested arrays, and only a
    ``ValueError`` becomes a 400, so the recursion error is converted here. Moderate
    nesting that parses would still break whatever dumps or stores it later (the
    recursion limit is shared with the call stack), so depth is capped well below it.
    The walk over the parsed value runs only when a cheap scan of the text says that it
    may find something.
    """

    sort_keys = False
    mimetype = "application/json; charset=utf-8"  # as API.md states it

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Like Flask's, but a ``Decimal`` is written as the exact JSON number it holds.

        Job params echo the numbers a client sent (``9.990000000000000001`` included)
        without a round trip through ``float``.
        """
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return simplejson.dumps(obj, use_decimal=True, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        # Strict decoding: raw UTF-8 surrogate bytes are a UnicodeDecodeError (a ValueError).
        text = s.decode(json.detect_encoding(s)) if isinstance(s, bytes) else s
        options: dict[str, Any] = {
            "parse_float": _decimal, "parse_int": _integer, "parse_constant": _no_constants,
        }  # fmt: skip
        try:
            value = json.loads(text, **(options | kwargs))
        except RecursionError:
            raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
        if text.count("[") + text.count("{") > MAX_DEPTH or _SURROGATE_ESCAPE.search(text):
            _inspect(value)
        return value
