"""Phone numbers as people and WhatsApp write them (+51 912 345 678, 0051 912…, 51912345678,
(+51) 912-345-678) read as one E.164 number. A number without a `+` or `00` is taken as already
holding its country code, as a WhatsApp id does; one starting with a single national 0, or too short
to hold a country code, is refused with that reason."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-.()/]")
MIN_DIGITS = 8  # a country code and a subscriber number: fewer cannot be a full international number
MAX_DIGITS = 15  # E.164


class PhoneError(ValueError):
    """Not a phone number that names one person worldwide; the message says why."""


def e164(text: str) -> str:
    """`+` and the digits, country code first: '+51912345678'."""
    raw = _SEPARATORS.sub("", text.strip())
    if raw.startswith("+"):
        digits = raw[1:]
    elif raw.startswith("00"):
        digits = raw[2:]
    elif raw.startswith("0"):
        raise PhoneError("starts with a national 0: give it with its country code (e.g. +51 912 345 678)")
    else:
        digits = raw
    if not digits.isascii() or not digits.isdigit():
        raise PhoneError("must be digits, optionally with +, spaces, dashes or parentheses")
    if len(digits) < MIN_DIGITS:
        raise PhoneError(f"is too short to hold a country code ({len(digits)} digits; at least {MIN_DIGITS})")
    if len(digits) > MAX_DIGITS:
        raise PhoneError(f"has {len(digits)} digits; an international number has at most {MAX_DIGITS}")
    return "+" + digits
