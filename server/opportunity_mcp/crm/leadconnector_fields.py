"""LeadConnector custom fields of opportunities (`Version: 2021-07-28`):

    definitions  GET /locations/{locationId}/customFields?model=opportunity
                 {customFields: [{id, name, fieldKey, dataType, picklistOptions[], model}]}
                                                      locations/customFields.readonly
    values       written only by POST /opportunities/ and PUT /opportunities/{id} (the upsert takes
                 none), as items {id, field_value} (v2 spells it snake_case); read back from any
                 opportunity as customFields [{id, fieldValue}]

Definitions are data typed by people in the CRM: names and options are cleaned and bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opportunity_mcp.crm.http import segment
from opportunity_mcp.crm.leadconnector import LeadConnectorClient
from opportunity_mcp.crm.lookups import items
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.crm.result import text
from opportunity_mcp.untrusted import ID_LIMIT, NAME_LIMIT, clean

MAX_OPTIONS = 200  # options kept per field: far above a real picklist
MAX_VALUES = 50  # custom values kept per deal


@dataclass(frozen=True, slots=True)
class FieldDef:
    id: str
    name: str
    key: str | None  # e.g. opportunity.budget
    data_type: str  # TEXT, LARGE_TEXT, NUMERICAL, MONETORY, DATE, CHECKBOX, SINGLE_OPTIONS, …
    options: tuple[str, ...] = ()


def read_definition(raw: Any) -> FieldDef | None:
    """A definition of an opportunity field; None for another model's, or one without id or name."""
    if not isinstance(raw, Mapping) or raw.get("model", "opportunity") != "opportunity":
        return None
    field_id, name = text(raw, "id"), text(raw, "name")
    if field_id is None or name is None:
        return None
    options = tuple(clean(o, NAME_LIMIT) for o in items(raw.get("picklistOptions"))[:MAX_OPTIONS] if isinstance(o, str))
    key = text(raw, "fieldKey")
    return FieldDef(
        id=clean(field_id, ID_LIMIT),
        name=clean(name, NAME_LIMIT),
        key=None if key is None else clean(key, NAME_LIMIT),
        data_type=(text(raw, "dataType") or "").upper(),
        options=options,
    )


async def definitions(client: LeadConnectorClient, policy: CallPolicy) -> list[FieldDef]:
    """The location's opportunity custom fields."""
    path = f"/locations/{segment(client.account.target)}/customFields"
    data = await client.send(policy, "GET", path, params={"model": "opportunity"}, idempotent=True)
    rows = data.get("customFields") if isinstance(data, dict) else None
    return [d for raw in items(rows) if (d := read_definition(raw))]


def values_of(raw: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """An opportunity's custom field values as (field id, value), as it shows them."""
    found: list[tuple[str, Any]] = []
    for item in items(raw.get("customFields"))[:MAX_VALUES]:
        if isinstance(item, Mapping) and (field_id := text(item, "id")) is not None:
            value = item.get("fieldValue", item.get("field_value"))
            found.append((clean(field_id, ID_LIMIT), value))
    return tuple(found)
