"""Text that came from a CRM or a client is data, never instructions: before it reaches an agent,
a journal line or a log it is one line (control, format and line-separator characters become
spaces), bounded, and quoted where it stands inside a sentence. What a client sends is refused when
it carries such characters (`control_characters`), rather than cleaned: nothing is guessed."""

from __future__ import annotations

import unicodedata

NAME_LIMIT = 80  # a CRM-supplied name, code or email in an answer
ID_LIMIT = 128
MESSAGE_LIMIT = 100  # a CRM's own error message
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Characters a client may not put in a name: controls, line and paragraph separators, and the
# bidirectional overrides and isolates that make text read differently from what it holds.
_BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C))


def clean(value: str, limit: int = NAME_LIMIT) -> str:
    """One line, white space folded, at most `limit` characters (cut with '…')."""
    if value.isascii() and value.isprintable():
        text = " ".join(value.split())
    else:
        text = " ".join("".join(" " if unicodedata.category(c) in _HIDDEN else c for c in value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(value: str, limit: int = NAME_LIMIT) -> str:
    """`clean(value)` between single quotes; a quote inside becomes ’, so the quoting cannot be broken."""
    return "'" + clean(value, limit).replace("'", "’") + "'"


def control_characters(value: str, *, allow: str = "") -> bool:
    """Whether a client's text holds characters a name may not (those in `allow` aside)."""
    if value.isascii() and value.isprintable():
        return False
    return any(c not in allow and (unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") or c in _BIDI) for c in value)
