"""The CRM-neutral outcome of a write: the opportunity as the CRM now holds it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opportunity_mcp.crm.errors import CrmBadResponse
from opportunity_mcp.untrusted import ID_LIMIT, NAME_LIMIT, clean


@dataclass(frozen=True, slots=True)
class Opportunity:
    id: str
    code: str | None = None
    name: str | None = None
    amount: float | None = None
    stage: str | None = None
    status: str | None = None
    contact: str | None = None
    assignee: str | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    opportunity: Opportunity
    created: bool
    account: str
    warnings: tuple[str, ...] = field(default=())


def text(obj: Mapping[str, Any], key: str) -> str | None:
    """A non-empty string field of an upstream object, else None (CRMs send "" for 'none')."""
    value = obj.get(key)
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def number(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, bool):
        return None
    if not isinstance(value, int | float | str):
        return None
    try:
        parsed = float(value)  # an int too large for a float raises OverflowError
    except (ValueError, OverflowError):
        return None
    return parsed if math.isfinite(parsed) else None


def read_opportunity(
    raw: Mapping[str, Any],
    keys: Mapping[str, str],
    *,
    fallback_id: str | None,
    missing: str,
    ids: tuple[str, ...] = ("id",),
) -> Opportunity:
    """The opportunity of an upstream object: `keys` maps our field names (code, name, amount, stage,
    status, contact, assignee) to the family's; `ids` are where its id may be. Raises CrmBadResponse
    with `missing` when no id is found."""
    opp_id = next((found for key in ids if (found := text(raw, key))), None) or fallback_id
    if opp_id is None:
        raise CrmBadResponse(missing)

    # What the CRM holds is data from whoever wrote it (a customer sets their own name): one line each,
    # bounded, before it reaches an answer, a journal row or a log.
    def field(name: str) -> str | None:
        key = keys.get(name)
        found = text(raw, key) if key else None
        return None if found is None else clean(found, NAME_LIMIT if name in ("name", "code") else ID_LIMIT)

    amount = keys.get("amount")
    return Opportunity(
        id=clean(opp_id, ID_LIMIT),
        code=field("code"),
        name=field("name"),
        amount=number(raw, amount) if amount else None,
        stage=field("stage"),
        status=field("status"),
        contact=field("contact"),
        assignee=field("assignee"),
    )
