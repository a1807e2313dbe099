"""Refusals an agent can act on: one line per problem, naming the argument and what is allowed."""

from __future__ import annotations

import re

from pydantic import BaseModel, ValidationError

# A place in the arguments as our models name it (name, followers.0): anything else came from the caller.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[0-9]{1,4})?", re.ASCII)

# pydantic's error types that our argument models can raise, in words (anything else: its own message).
_WORDS = {
    "missing": "required",
    "literal_error": "must be one of {expected}",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "string_type": "must be text",
    "list_type": "must be a list",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
}


def describe_validation(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line per problem, naming the argument and what is allowed; never echoes the input."""
    lines: list[str] = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = ", ".join(model.model_fields)
            text = f"is not an argument of this tool (allowed: {allowed})"
            if not _NAME.fullmatch(where):  # not a name an agent could mean: not echoed back
                where, text = "arguments", f"include a name that is not an argument of this tool (allowed: {allowed})"
        elif kind in _WORDS:
            text = _WORDS[kind].format(expected=(err.get("ctx") or {}).get("expected", ""))
        else:
            text = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {text}")
    return "Invalid arguments: " + "; ".join(lines)
