"""Amounts as people write them, read only when they have one reading.

A JSON number is taken as it is (finite, not negative, not -0, exact as a float). A string is read
when it has a single reading: "1200", "1200.50", "1 200", "1.234,56" (both separators: the last is
the decimal one). "1.200" and "1,200" read as 1.2 or as 1200 depending on where the customer lives:
they are read only with the account's `number_format` ("1.234,56" or "1,234.56"), and refused
without it, asking for a JSON number. Nothing is rounded: a value a float cannot hold exactly, a
currency sign, an exponent, an underscore or a digit that is not 0-9 is refused in plain words.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Literal

NumberFormat = Literal["1.234,56", "1,234.56"]
NUMBER_FORMATS: tuple[NumberFormat, ...] = ("1.234,56", "1,234.56")
MAX_AMOUNT = 10**13  # exclusive: below it every amount with cents is exact as a float
_SPACES = re.compile(r"[ \u00a0\u202f]")  # a space, a no-break space, a narrow no-break space
_SHAPE = re.compile(r"[0-9]+([.,][0-9]+)*", re.ASCII)
_GROUPED = re.compile(r"[0-9]{1,3}(,[0-9]{3})*|[0-9]{1,3}(\.[0-9]{3})*", re.ASCII)
_EXPONENT = re.compile(r"[0-9.,]+[eE][+-]?[0-9]+", re.ASCII)
_CHARS = re.compile(r"[0-9][0-9 .,]*", re.ASCII)
_SPACED = re.compile(r"([0-9]+(?: [0-9]+)*)([.,][0-9]+)?", re.ASCII)
_SEND_A_NUMBER = "send a JSON number such as 1200.5"


def number_format(value: str | None) -> NumberFormat | None:
    """`value` as a number format, if it is one."""
    return next((f for f in NUMBER_FORMATS if f == value), None)


class AmountError(ValueError):
    """Not an amount with one reading; the message says why and what to send."""


def amount(value: object, number_format: NumberFormat | None = None) -> float:
    """The amount `value` stands for, or AmountError. `number_format` is the account's (or None)."""
    if isinstance(value, bool):
        raise AmountError("must be a number, not true/false")
    if isinstance(value, int):
        return _checked(Decimal(value), value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AmountError("must be a finite number")
        if value == 0 and math.copysign(1.0, value) < 0:
            raise AmountError("must not be negative zero; send 0")
        return _checked(Decimal(repr(value)), value)
    if isinstance(value, str):
        return _checked(_read_text(value, number_format), None)
    raise AmountError("must be a number (one value, not a list or an object)")


def _checked(exact: Decimal, given: float | None) -> float:
    if exact < 0:
        raise AmountError("must be ≥ 0")
    if exact >= MAX_AMOUNT:
        raise AmountError(f"must be below {MAX_AMOUNT:,} (larger values cannot be stored exactly)")
    number = float(exact) if given is None else float(given)
    if Decimal(repr(number)) != exact:
        raise AmountError(f"has more digits than can be stored exactly; {_SEND_A_NUMBER} with at most 15 digits")
    return number + 0.0  # never -0.0


def _read_text(raw: str, number_format: NumberFormat | None) -> Decimal:
    text = _SPACES.sub(" ", raw.strip())
    if not text:
        raise AmountError("must be a number; got empty text")
    if any(c.isdigit() and not c.isascii() for c in text):
        raise AmountError("must use the digits 0-9")
    if "_" in text:
        raise AmountError(f"must not contain '_'; {_SEND_A_NUMBER}")
    if text[0] in "+-":
        raise AmountError("must be ≥ 0 and carry no sign" if text[0] == "-" else "must carry no sign")
    if _EXPONENT.fullmatch(text) or text.casefold() in ("inf", "infinity", "nan"):
        raise AmountError(f"must be written with digits only (no exponent, inf or nan); {_SEND_A_NUMBER}")
    if not _CHARS.fullmatch(text):
        raise AmountError(
            "must be digits with at most one decimal separator (no currency sign or unit); " + _SEND_A_NUMBER
        )
    if " " in text:
        text = _ungroup_spaces(text)
    if not _SHAPE.fullmatch(text):
        raise AmountError(
            "must be digits with at most one decimal separator (no currency sign or unit); " + _SEND_A_NUMBER
        )
    return Decimal(_plain(text, number_format))


def _ungroup_spaces(text: str) -> str:
    """'1 234 567,50' → '1234567,50': groups of three after a first group of one to three."""
    found = _SPACED.fullmatch(text)
    groups = found.group(1).split(" ") if found else []
    if not groups or not (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
        raise AmountError("groups its digits irregularly; write it as 1 200 000, or " + _SEND_A_NUMBER)
    assert found is not None
    return "".join(groups) + (found.group(2) or "")


def _plain(text: str, number_format: NumberFormat | None) -> str:
    """The digits with '.' as the decimal point, when `text` has one reading (else AmountError)."""
    dots, commas = text.count("."), text.count(",")
    if not dots and not commas:
        return text
    if dots and commas:
        decimal = "." if text.rfind(".") > text.rfind(",") else ","
        group = "," if decimal == "." else "."
        head, _, tail = text.rpartition(decimal)
        if head.count(decimal) or not _GROUPED.fullmatch(head):
            raise AmountError("mixes '.' and ',' in a way that has no single reading; " + _SEND_A_NUMBER)
        _agrees(number_format, decimal)
        return head.replace(group, "") + "." + tail
    sep = "." if dots else ","
    if text.count(sep) > 1:  # only a thousands separator repeats
        if not _GROUPED.fullmatch(text):
            raise AmountError(f"uses '{sep}' in a way that has no single reading; " + _SEND_A_NUMBER)
        _agrees(number_format, "," if sep == "." else ".")
        return text.replace(sep, "")
    head, _, tail = text.partition(sep)
    could_group = len(tail) == 3 and 1 <= len(head) <= 3 and head != "0"
    if not could_group:
        return head + "." + tail  # a decimal separator: grouping would need three digits after it
    if number_format is None:
        raise AmountError(
            f"'{text}' could mean {head}{tail} or {head}.{tail}; {_SEND_A_NUMBER}, "
            "or ask whoever runs this server to set the account's number_format"
        )
    decimal = number_format[5]  # "1.234,56" → ","; "1,234.56" → "."
    return head + ("." + tail if sep == decimal else tail)


def _agrees(number_format: NumberFormat | None, decimal: str) -> None:
    if number_format is not None and number_format[5] != decimal:
        group = "," if decimal == "." else "."
        raise AmountError(
            f"reads as '{group}' for thousands and '{decimal}' for decimals, but this account writes {number_format}; "
            + _SEND_A_NUMBER
        )
