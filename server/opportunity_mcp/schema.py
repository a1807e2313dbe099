"""Schemas as an agent should read them: a tool's arguments published flat (the properties are the
arguments themselves: no `$ref`, no auto titles, no `null` branches), and the envelope per CRM."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from opportunity_mcp.envelope import Envelope

# What a client keys on in every answer: the deal's id. The other fields (ok, action, account, code,
# name, amount, stage, status, contact, assignee, resolved, warnings) are there when filled, and a
# preview or a dry run has no id; declaring them would cost every tools/list tokens a tool (the budget
# of four tools is 1,400) and every call its client's check of each one. The text says them all.
PUBLISHED = ("id",)


def envelope_schema() -> dict[str, Any]:
    """The envelope's published output schema: its id, nothing required; further fields are allowed."""
    schema = flat_schema(Envelope, required=False)
    return {**schema, "properties": {name: schema["properties"][name] for name in PUBLISHED}}


class _FlatSchema(GenerateJsonSchema):
    """Schemas as an agent should read them: no titles, optional means 'may be left out'."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        default = schema.get("default")
        # Left out: none, an empty list, and false (an omitted flag is off; saying so costs tokens).
        if default is None or default is False or isinstance(default, list):
            return inner
        return {**inner, "default": default}


def flat_schema(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """The model's JSON schema as a flat object schema (no root title or description)."""
    schema = model.model_json_schema(schema_generator=_FlatSchema)
    if not required:
        schema.pop("required", None)
    if "$defs" in schema:
        raise TypeError(f"{model.__name__} would publish $defs; keep tool arguments flat")
    for key in ("title", "description", "additionalProperties"):
        schema.pop(key, None)
    return schema
