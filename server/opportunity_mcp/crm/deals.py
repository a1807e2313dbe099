"""Deals as read back from a CRM, whatever the family: enough to find a customer's open deal and to
show a list of them (name, stage, amount, status, id, last change). Text in them is cleaned like
every CRM text (`untrusted`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opportunity_mcp.crm.result import text
from opportunity_mcp.untrusted import ID_LIMIT, clean


@dataclass(frozen=True, slots=True)
class Deal:
    id: str
    name: str | None
    amount: float | None
    stage: str | None  # the stage's id
    status: str  # open, won, lost, abandoned; "closed" where the CRM does not say which
    contact: str | None
    pipeline: str | None = None
    changed: str | None = None  # ISO time of its last change
    created: str | None = None  # ISO time it was made
    code: str | None = None
    custom: tuple[tuple[str, Any], ...] = ()  # custom field values by field id, as the CRM shows them

    @property
    def open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True, slots=True)
class DealPage:
    """What a search found, and whether it read everything that could match (`complete`)."""

    deals: tuple[Deal, ...]
    complete: bool = True
    total: int | None = None  # how many match, when the CRM says


def field(raw: Mapping[str, Any], *keys: str, limit: int = ID_LIMIT) -> str | None:
    """The first non-empty text field among `keys`, cleaned."""
    found = next((value for key in keys if (value := text(raw, key))), None)
    return None if found is None else clean(found, limit)
