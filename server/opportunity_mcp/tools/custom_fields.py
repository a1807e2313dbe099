"""Custom fields by name on LeadConnector: each name found among the location's opportunity field
definitions (exact once case, accents and spacing are set aside, or the field's key: `opportunity.budget`
or `budget`), each value checked by the field's own type before anything is sent, and written as the
item the API takes (`{id, field_value}`). The definitions are kept like the other reference lists and
fetched again once when a name is missing. A miss names the known fields (or options) and writes
nothing.

    text (TEXT, LARGE_TEXT, PHONE, EMAIL)      text, bounded; a number is written as its digits
    numbers (NUMERICAL, FLOAT, MONETORY)       a number, read like amounts (the account's format)
    DATE                                       YYYY-MM-DD
    SINGLE_OPTIONS, RADIO                      one of the field's options
    CHECKBOX, MULTIPLE_OPTIONS                 a list of its options
Options match like names and are sent in the field's own spelling. Other types (files, signatures)
are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from opportunity_mcp.crm.base import CrmClient
from opportunity_mcp.crm.deals import Deal
from opportunity_mcp.crm.errors import CrmAuthError, CrmError
from opportunity_mcp.crm.leadconnector import LeadConnectorClient
from opportunity_mcp.crm.leadconnector_fields import FieldDef, definitions
from opportunity_mcp.models import Reading
from opportunity_mcp.numbers import AmountError, amount
from opportunity_mcp.tools.resolve import Lookups, norm
from opportunity_mcp.untrusted import clean, control_characters, quoted

TEXT_LIMITS = {"TEXT": 500, "PHONE": 40, "EMAIL": 254, "LARGE_TEXT": 5000}
NUMBERS = frozenset({"NUMERICAL", "FLOAT", "MONETORY"})
ONE_OPTION = frozenset({"SINGLE_OPTIONS", "RADIO"})
OPTIONS = frozenset({"CHECKBOX", "MULTIPLE_OPTIONS"})
SHOWN = 10  # known fields or options a refusal lists
Item = dict[str, Any]
T = TypeVar("T")


def _matches(field: FieldDef, wanted: str) -> bool:
    names = {norm(field.name)}
    if field.key is not None:
        names |= {norm(field.key), norm(field.key.removeprefix("opportunity."))}
    return norm(wanted) in names


def _known(fields: list[FieldDef]) -> str:
    shown = ", ".join(f"{quoted(f.name, 40)} ({f.data_type.lower() or 'untyped'})" for f in fields[:SHOWN])
    more = f" and {len(fields) - SHOWN} more" if len(fields) > SHOWN else ""
    return f" Known: {shown}{more}." if fields else " This location has no opportunity custom fields."


async def _definitions(look: Lookups, client: LeadConnectorClient, refresh: bool) -> tuple[list[FieldDef], bool]:
    async def get() -> list[FieldDef]:
        return await definitions(client, look.policy)

    cache = look.state.references
    return await _ask(lambda: cache.get(client.account.name, "custom fields", get, refresh=refresh))


async def field_names(look: Lookups, client: CrmClient) -> dict[str, str]:
    """Custom field names by id (LeadConnector); {} for a CRM whose deals show them by name."""
    if not isinstance(client, LeadConnectorClient):
        return {}
    fields, _ = await _definitions(look, client, False)
    return {f.id: f.name for f in fields}


def by_name(deal: Deal, names: Mapping[str, str]) -> dict[str, Any]:
    """A deal's custom values under their fields' names (an id no definition names stays an id)."""
    return {names.get(key, key): _bounded(value) for key, value in deal.custom if value not in (None, "", [])}


def _bounded(value: Any) -> Any:
    """A value the CRM holds, as an answer may carry it: text cleaned and bounded, lists cut short."""
    if isinstance(value, list):
        return [clean(str(v), 100) for v in value[:20]]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return clean(str(value), 500)


def said(value: Any) -> str:
    """A custom value as the CRM holds it, for a line of text: quoted, bounded (it is data)."""
    if isinstance(value, list):
        return ", ".join(quoted(str(v), 40) for v in value[:10])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return quoted(str(value), 60)


async def custom_items(
    look: Lookups, client: LeadConnectorClient, given: Mapping[str, Any], reading: Reading
) -> tuple[tuple[Item, ...], str]:
    """The items to write, and the fields in words for the receipt (`Budget, Product`)."""
    fields, fresh = await _definitions(look, client, False)
    chosen: list[tuple[FieldDef, Any]] = []
    for name, value in given.items():
        hits = [f for f in fields if _matches(f, name)]
        if not hits and not fresh:  # a field made a minute ago: the list is fetched again, once
            fields, fresh = await _definitions(look, client, True)
            hits = [f for f in fields if _matches(f, name)]
        if len(hits) != 1:
            what = f"matches {len(hits)} custom fields" if hits else "matches no opportunity custom field"
            raise ToolError(
                f"Not found: customFields {quoted(name)} {what} in {look.where}. Nothing was written; use the "
                f"field's name or key.{_known(hits or fields)}"
            )
        chosen.append((hits[0], value))
    ids = [f.id for f, _ in chosen]
    if len(set(ids)) != len(ids):
        raise ToolError("Invalid arguments: customFields: two names there are the same field; give it once")
    items = tuple({"id": f.id, "field_value": typed(f, value, reading)} for f, value in chosen)
    return items, ", ".join(quoted(f.name, 40) for f, _ in chosen)


async def _ask(request: Callable[[], Awaitable[T]]) -> T:
    """The definitions read, a failure said as a refusal: no other argument can stand in for them."""
    try:
        return await request()
    except CrmAuthError as err:
        raise ToolError(
            f"Lookup refused: {err.message}. These credentials may not read custom fields (it needs "
            "locations/customFields.readonly); nothing was written. Leave customFields out, or ask whoever runs "
            "this server for that permission."
        ) from None
    except CrmError as err:
        raise ToolError(f"Lookup failed: {err.message}. Nothing was written; try again shortly.") from None


def typed(field: FieldDef, value: Any, reading: Reading) -> str | list[str]:
    """The value as the field's type takes it; a refusal naming the field and what it allows."""
    arg, kind = f"Invalid arguments: customFields {quoted(field.name, 40)}", field.data_type
    if kind in TEXT_LIMITS:
        return _text(value, kind, arg)
    if kind in NUMBERS:
        try:
            return _digits(amount(value, reading.number_format))
        except AmountError as exc:
            raise ToolError(f"{arg}: {exc}") from None
    if kind == "DATE":
        if not isinstance(value, str) or len(value) != 10 or not _is_date(value):
            raise ToolError(f"{arg}: must be a date as YYYY-MM-DD, e.g. 2026-12-20")
        return value
    if kind in ONE_OPTION:
        if not isinstance(value, str):
            raise ToolError(f"{arg}: must be one of its options, as text.{_options(field)}")
        return _option(field, value, arg)
    if kind in OPTIONS:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ToolError(f"{arg}: must be a list of its options.{_options(field)}")
        return list(dict.fromkeys(_option(field, v, arg) for v in value))
    raise ToolError(f"{arg}: its type ({kind.lower() or 'none'}) is not one this tool writes; set it in the CRM")


def _text(value: Any, kind: str, arg: str) -> str:
    if (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and math.isfinite(value)):
        value = _digits(value)  # a number for a text field: its digits, never rounded
    limit, allow = TEXT_LIMITS[kind], "\n\t" if kind == "LARGE_TEXT" else ""
    if not isinstance(value, str) or not 1 <= len(value) <= limit or control_characters(value, allow=allow):
        raise ToolError(f"{arg}: must be text of 1 to {limit} characters (without control characters)")
    return value


def _option(field: FieldDef, value: str, arg: str) -> str:
    hits = [o for o in field.options if norm(o) == norm(value)]
    if len(hits) != 1:
        raise ToolError(f"{arg}: {quoted(value, 40)} is not one of its options.{_options(field)}")
    return hits[0]


def _options(field: FieldDef) -> str:
    shown = ", ".join(quoted(o, 40) for o in field.options[:SHOWN])
    more = f" and {len(field.options) - SHOWN} more" if len(field.options) > SHOWN else ""
    return f" Options: {shown}{more}." if field.options else " It has no options."


def _digits(number: float) -> str:
    """A number as the text the API stores: 5000, 1200.5, never rounded, no exponent (a whole
    number as given, whatever its size)."""
    if isinstance(number, int):
        return str(number)
    return format(Decimal(repr(float(number))).normalize(), "f")


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _is_date(text: str) -> bool:
    """YYYY-MM-DD and a real day (not the other ISO forms Python reads, such as 2026-W01-1)."""
    if not _DAY.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
