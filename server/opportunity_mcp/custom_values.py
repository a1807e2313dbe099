"""The shape of a `customFields` argument: field name → value, as a conversation gives them
(`{"Budget": 5000, "Product": "Plan anual", "Colors": ["Red", "Blue"]}`). Only the shape is checked
here (bounded names and values, no control characters); what each value must be is decided by the
field's own type once its definition is read (`tools.custom_fields`)."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from opportunity_mcp.untrusted import control_characters, quoted

MAX_FIELDS = 20
MAX_ITEMS = 50
NAME_LIMIT, TEXT_LIMIT, ITEM_LIMIT = 100, 5000, 200


def json_argument(opener: str) -> BeforeValidator:
    """Some hosts send list and object arguments as a JSON string ('["a"]', '{"a": 1}'): read those
    as the value they mean; anything else is left for validation to refuse."""

    def read(value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith(opener):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    return BeforeValidator(read)


def _text(value: Any, limit: int, allow: str = "") -> bool:
    return isinstance(value, str) and 1 <= len(value) <= limit and not control_characters(value, allow=allow)


def _value(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 10**15  # a whole number a field can hold (math.isfinite overflows on 10**400)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return 1 <= len(value) <= MAX_ITEMS and all(_text(v, ITEM_LIMIT) for v in value)
    return _text(value, TEXT_LIMIT, "\n\t")


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    if not 1 <= len(fields) <= MAX_FIELDS:
        raise ValueError(f"must name 1 to {MAX_FIELDS} fields")
    for name, value in fields.items():
        if not _text(name, NAME_LIMIT):
            raise ValueError(f"field names must be text of 1 to {NAME_LIMIT} characters")
        if not _value(value):
            raise ValueError(
                f"{quoted(name, NAME_LIMIT)}: a value is text (≤ {TEXT_LIMIT}), a number, or a list of up to "
                f"{MAX_ITEMS} texts (options)"
            )
    return fields


# Published as a bare object: what a value may be is said by the field's type, in the refusal.
CustomValues = Annotated[
    dict[str, Any], json_argument("{"), AfterValidator(_checked), WithJsonSchema({"type": "object"})
]
CUSTOM_HELP = "Field name → value"
CustomField = Annotated[CustomValues | None, Field(description=CUSTOM_HELP)]
