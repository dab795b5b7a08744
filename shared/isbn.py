"""ISBN-10 and ISBN-13: check digits, normalization, and the canonical ISBN-13."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s-]")


def normalize_isbn(raw: str) -> str | None:
    """The ISBN without hyphens and spaces, or ``None`` when its check digit is wrong."""
    digits = _SEPARATORS.sub("", raw).upper()
    if not digits.isascii():
        return None
    if len(digits) == 10 and digits[:9].isdigit() and (digits[9].isdigit() or digits[9] == "X"):
        return digits if isbn10_check_digit(digits[:9]) == digits[9] else None
    if len(digits) == 13 and digits.isdigit() and digits[:3] in {"978", "979"}:
        return digits if isbn13_check_digit(digits[:12]) == digits[12] else None
    return None


def to_isbn13(isbn: str) -> str:
    """The ISBN-13 that names the same book: one book, one canonical form.

    An ISBN-10 becomes ``978`` + its first nine digits + a new ISBN-13 check digit (its
    own check character, ``X`` included, is dropped). ``ValueError`` for anything that
    ``normalize_isbn`` would refuse.
    """
    normalized = normalize_isbn(isbn)
    if normalized is None:
        raise ValueError(f"not a valid ISBN: {isbn!r}")
    if len(normalized) == 13:
        return normalized
    body = "978" + normalized[:9]
    return body + isbn13_check_digit(body)


def isbn10_check_digit(first9: str) -> str:
    total = sum((10 - i) * int(d) for i, d in enumerate(first9))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


def isbn13_check_digit(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)
