"""LeadConnector opportunity custom fields as the sandbox plays them: definitions of every data type
(options included), and the values a create or an update writes, checked as the API would.

    GET /locations/{locationId}/customFields?model=opportunity      locations/customFields.readonly
    PUT /opportunities/{id}     pipelineId, name, pipelineStageId, status, monetaryValue, assignedTo,
                                customFields; anything else is a 422, as its whitelist validation does

Items name their field by `id` or by `key` (the field's fieldKey), and carry `field_value` (the
v2 spelling; `fieldValue` is refused with this version): text for text, numbers, dates and single
options, a list for checkboxes and multiple options, every option among the field's own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from opportunity_mcp.sandbox import leadconnector as lc
from opportunity_mcp.sandbox.state import SandboxState, now_iso

Reply = tuple[int, Any]
UPDATE_ALLOWED = frozenset(
    {"pipelineId", "name", "pipelineStageId", "status", "monetaryValue", "assignedTo", "customFields"}
)
LISTS = frozenset({"CHECKBOX", "MULTIPLE_OPTIONS"})
_DEFAULTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("cf-budget", "Budget", "MONETORY", ()),
    ("cf-units", "Units", "NUMERICAL", ()),
    ("cf-product", "Product", "TEXT", ()),
    ("cf-notes", "Notes", "LARGE_TEXT", ()),
    ("cf-date", "Preferred date", "DATE", ()),
    ("cf-source", "Source", "SINGLE_OPTIONS", ("WhatsApp", "Web", "Referido")),
    ("cf-urgent", "Urgente", "RADIO", ("Sí", "No")),
    ("cf-extras", "Extras", "CHECKBOX", ("Instalación", "Soporte 24/7", "Capacitación")),
    ("cf-colors", "Colores", "MULTIPLE_OPTIONS", ("Rojo", "Azul")),
    ("cf-contract", "Contrato", "FILE_UPLOAD", ()),
)


def default_fields() -> list[dict[str, Any]]:
    return [
        {
            "id": field_id,
            "name": name,
            "fieldKey": "opportunity." + name.lower().replace(" ", "_"),
            "placeholder": name,
            "dataType": data_type,
            "position": n,
            "picklistOptions": list(options),
            "model": "opportunity",
        }
        for n, (field_id, name, data_type, options) in enumerate(_DEFAULTS)
    ]


def definitions(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], location: str) -> Reply:
    refused = lc.auth(state, headers) or lc.scope(state, "locations/customFields.readonly")
    if refused:
        return refused
    if location not in state.seed.locations:
        return lc.error(400, "Location not found")
    model = query.get("model", "all")
    with state.lock:
        found = [copy.deepcopy(f) for f in state.lc_fields if model in ("all", f["model"])]
    return 200, {"customFields": found}


def written(state: SandboxState, items: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """The problems with a body's customFields, or the values to store ([{id, fieldValue}])."""
    if not isinstance(items, list):
        return ["customFields must be an array"], []
    by_id = {f["id"]: f for f in state.lc_fields}
    by_key = {f["fieldKey"]: f for f in state.lc_fields}
    problems, values = [], []
    for n, item in enumerate(items):
        problem, value = _item(item, by_id, by_key)
        if problem is None:
            values.append(value)
        else:
            problems.append(f"customFields.{n}: {problem}")
    return problems, values


def _item(item: Any, by_id: dict[str, Any], by_key: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    if not isinstance(item, dict):
        return "must be an object", {}
    if "fieldValue" in item:
        return "property fieldValue should not exist", {}
    field = by_id.get(str(item.get("id"))) or by_key.get(str(item.get("key")))
    if field is None:
        return "names no custom field of this location", {}
    value, options = item.get("field_value"), field["picklistOptions"]
    if field["dataType"] in LISTS:
        fits = isinstance(value, list) and all(v in options for v in value)
    else:
        fits = isinstance(value, str) and (not options or value in options)
    if not fits:
        return "field_value does not fit the field's type or options", {}
    return None, {"id": field["id"], "fieldValue": value}


def merged(held: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A deal's values with those written replacing the same fields'."""
    ids = {v["id"] for v in new}
    return [v for v in held if v["id"] not in ids] + new


def update(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], opp_id: str, body: Any) -> Reply:
    refused = lc.auth(state, headers)
    if refused:
        return refused
    if not isinstance(body, dict):
        return lc.error(400, "Bad Request", "Bad Request")
    problems = [f"property {k} should not exist" for k in body if k not in UPDATE_ALLOWED]
    problems += [p for p in lc.type_problems(body) if not p.startswith("followers")]
    values: list[dict[str, Any]] = []
    with state.lock:
        if "customFields" in body:
            wrong, values = written(state, body["customFields"])
            problems += wrong
        if problems:
            return lc.error(422, problems, "Unprocessable Entity")
        opp = state.leadconnector.get(opp_id)
        if opp is None:
            return lc.error(400, "Opportunity not found")
        stamp = now_iso()
        for key in ("pipelineId", "name", "pipelineStageId", "status", "monetaryValue", "assignedTo"):
            if key in body:
                opp[key] = body[key]
        opp["customFields"] = merged(opp["customFields"], values)
        opp["updatedAt"] = stamp
        return 200, {"opportunity": copy.deepcopy(opp)}
