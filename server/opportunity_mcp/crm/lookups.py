"""What a lookup returns, whatever the family: a named thing and its id (a contact, a seller, a
stage, a pipeline, a lost reason), with what identifies it to people."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opportunity_mcp.crm.result import text
from opportunity_mcp.untrusted import ID_LIMIT, clean


@dataclass(frozen=True, slots=True)
class Named:
    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    within: str | None = None  # the pipeline a stage belongs to


def named(raw: Any, *, name_keys: tuple[str, ...] = ("name",), within: str | None = None) -> Named | None:
    """A Named from an upstream object; None when it has no id. Names made of several keys (first
    and last name) are joined."""
    if not isinstance(raw, Mapping):
        return None
    found = text(raw, "id")
    if found is None:
        return None
    # Names are whatever a customer or a colleague typed: one line each, bounded (`untrusted`).
    name = clean(" ".join(part for key in name_keys if (part := text(raw, key))))
    phone = text(raw, "phone") or text(raw, "platformSenderPhone") or text(raw, "cellphone")
    email = text(raw, "email")
    return Named(
        clean(found, ID_LIMIT),
        name or clean(found, ID_LIMIT),
        email=None if email is None else clean(email),
        phone=None if phone is None else clean(phone),
        within=within,
    )


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
