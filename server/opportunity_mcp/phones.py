"""Phone numbers as people and WhatsApp write them (+51 912 345 678, 0051 912…, 51912345678,
(+51) 912-345-678), read as one E.164 number, never guessed.

A number with `+` or `00` carries its country code. One without them is read with the account's
`default_country` (ISO code, e.g. PE) when one is set, and otherwise only when its digits already
form a valid international number, as a WhatsApp id does (51912345678). A national number with no
country to read it in is refused with "add the country code", never taken as another country's; so
is a number whose two readings (national and international) name different phones. Validity comes
from libphonenumber's metadata (the `phonenumberslite` package).
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

_SEPARATORS = re.compile(r"[\s\-.()/]")
MIN_DIGITS = 8  # a country code and a subscriber number: fewer cannot be a full international number
MAX_DIGITS = 15  # E.164
_ADD_CODE = "add the country code (e.g. +51 912 345 678)"


class PhoneError(ValueError):
    """Not a phone number that names one person worldwide; the message says why."""


def _library() -> ModuleType:
    # Imported when first needed: its metadata costs ~45 ms of start-up that most calls never use
    # (a number written with + or 00 needs none of it).
    return importlib.import_module("phonenumbers")


def is_country(code: str) -> bool:
    """Whether `code` is an ISO 3166 region libphonenumber knows (PE, ES, US …)."""
    return bool(code in _library().SUPPORTED_REGIONS)


def e164(text: str, default_country: str | None = None) -> str:
    """`+` and the digits, country code first: '+51912345678'."""
    raw = _SEPARATORS.sub("", text.strip())
    international = raw.startswith(("+", "00"))
    digits = raw[1:] if raw.startswith("+") else raw[2:] if raw.startswith("00") else raw
    if not digits.isascii() or not digits.isdigit():
        raise PhoneError("must be digits, optionally with +, spaces, dashes or parentheses")
    if international:
        if digits.startswith("0"):
            raise PhoneError("has no country code after + or 00 (no country code starts with 0)")
        if raw.startswith("00") and _valid("+" + digits) is None:
            # 00 is the international prefix in most countries, not all (0011, 010, 001…): a 00 number
            # is taken only when what follows is a valid international number.
            raise PhoneError(f"does not read as an international number after 00: {_ADD_CODE}")
        return _international(digits)
    as_given = _valid("+" + digits)
    national = _valid(digits, default_country) if default_country else None
    if national and as_given and national != as_given:
        raise PhoneError(f"reads as {national} or as {as_given}: give it with + and the country code")
    found = national or as_given
    if found is None:
        where = f"a valid number in {default_country}, nor one with" if default_country else "written with"
        raise PhoneError(f"is not {where} its country code: {_ADD_CODE}")
    return found


def _international(digits: str) -> str:
    if len(digits) < MIN_DIGITS:
        raise PhoneError(f"is too short to hold a country code ({len(digits)} digits; at least {MIN_DIGITS})")
    if len(digits) > MAX_DIGITS:
        raise PhoneError(f"has {len(digits)} digits; an international number has at most {MAX_DIGITS}")
    return "+" + digits


def _valid(text: str, region: str | None = None) -> str | None:
    """The E.164 form of `text` read in `region` (None: with its own country code), if valid."""
    library = _library()
    try:
        number = library.parse(text, region)
    except library.NumberParseException:
        return None
    if not library.is_valid_number(number):
        return None
    return str(library.format_number(number, library.PhoneNumberFormat.E164))
