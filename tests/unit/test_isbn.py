"""ISBN-10 and ISBN-13 check digits, normalization and the canonical ISBN-13."""

from __future__ import annotations

import pytest

from shared.isbn import isbn10_check_digit, isbn13_check_digit, normalize_isbn, to_isbn13


@pytest.mark.parametrize(
    ("first9", "check"),
    [("030640615", "2"), ("043942089", "X"), ("080442957", "X"), ("000000000", "0")],
)
def test_isbn10_check_digit(first9: str, check: str) -> None:
    assert isbn10_check_digit(first9) == check


@pytest.mark.parametrize(
    ("first12", "check"),
    [("978045152493", "5"), ("978030640615", "7"), ("979000000000", "1"), ("978000000000", "2")],
)
def test_isbn13_check_digit(first12: str, check: str) -> None:
    assert isbn13_check_digit(first12) == check


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("9780451524935", "9780451524935"),
        ("978-0-451-52493-5", "9780451524935"),
        ("978 0 451 52493 5", "9780451524935"),
        (" 978-0451524935 ", "9780451524935"),
        ("0306406152", "0306406152"),
        ("0-306-40615-2", "0306406152"),
        ("043942089X", "043942089X"),
        ("0-439-42089-x", "043942089X"),  # a lower-case check character is upper-cased
        ("9790000000001", "9790000000001"),
    ],
)
def test_valid_isbns_are_normalized(raw: str, normalized: str) -> None:
    assert normalize_isbn(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "9780451524936",  # wrong ISBN-13 check digit
        "0306406153",  # wrong ISBN-10 check digit
        "0439420891",  # X is the right check character, 1 is not
        "X439420890",  # X only in the last place
        "978045152493X",  # no X in an ISBN-13
        "1234567890128",  # valid EAN-13 check digit, but not a 978/979 book number
        "978045152493",  # 12 digits
        "97804515249355",  # 14 digits
        "030640615",  # 9 digits
        "978_0451524935",  # only hyphens and spaces are separators
        "٩٧٨٠٤٥١٥٢٤٩٣٥",  # Arabic-Indic digits are digits to str.isdigit, not to an ISBN
        "978045152493\uff15",  # a full-width digit 5
        "abcdefghij",
    ],
)
def test_invalid_isbns_are_refused(raw: str) -> None:
    assert normalize_isbn(raw) is None


@pytest.mark.parametrize(
    ("isbn", "canonical"),
    [
        ("0451524934", "9780451524935"),
        ("0-451-52493-4", "9780451524935"),
        ("9780451524935", "9780451524935"),
        ("978-0-451-52493-5", "9780451524935"),
        ("043942089X", "9780439420891"),  # the X is dropped, a new check digit computed
        ("0-439-42089-x", "9780439420891"),
        ("080442957X", "9780804429573"),
        ("0306406152", "9780306406157"),
        ("0000000000", "9780000000002"),
        ("9790000000001", "9790000000001"),  # 979 books have no ISBN-10
    ],
)
def test_to_isbn13_gives_one_form_per_book(isbn: str, canonical: str) -> None:
    assert to_isbn13(isbn) == canonical
    assert normalize_isbn(canonical) == canonical


@pytest.mark.parametrize("raw", ["", "0451524935", "9780451524936", "978045152493X", "abc"])
def test_to_isbn13_refuses_what_is_not_an_isbn(raw: str) -> None:
    with pytest.raises(ValueError, match="not a valid ISBN"):
        to_isbn13(raw)
