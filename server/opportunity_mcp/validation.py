"""Refusals an agent can act on: one line per problem, naming the argument and what is allowed.
Bounded whatever the request: at most a few problems are named, unknown argument names are counted
and the allowed list said once, so a call with 20,000 made-up names gets a short answer."""

from __future__ import annotations

import re
from collections.abc import Sequence

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


MAX_PROBLEMS = 3
MAX_ARGUMENTS = 64  # far above any tool's; more names are refused before they are validated one by one
MAX_REFUSAL = 1000


def unknown_names(names: Sequence[str], model: type[BaseModel]) -> str:
    """The refusal of argument names the tool does not take: a few named, the rest counted; a name
    that no agent could mean (markup, JSON) is counted, never echoed."""
    allowed = f"(allowed: {', '.join(model.model_fields)})"
    shown = [n for n in names if _NAME.fullmatch(n)][:MAX_PROBLEMS]
    others = len(names) - len(shown)
    if not shown:
        many = f"{others:,} names that are not arguments" if others > 1 else "a name that is not an argument"
        return f"arguments: include {many} of this tool {allowed}"
    listed = ", ".join(shown) + (f" and {others:,} other name{'s' if others > 1 else ''}" if others else "")
    verb = "is not an argument" if len(names) == 1 else "are not arguments"
    return f"{listed}: {verb} of this tool {allowed}"


def describe_validation(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line per problem (at most a few), naming the argument and what is allowed; never echoes
    the input; under MAX_REFUSAL characters."""
    lines: list[str] = []
    unknown: list[str] = []
    errors = exc.errors(include_url=False, include_input=False)
    for err in errors:
        where = ".".join(str(p) for p in err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            unknown.append(where)
            continue
        if kind in _WORDS:
            text = _WORDS[kind].format(expected=(err.get("ctx") or {}).get("expected", ""))
        else:
            text = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {text}")
    more = len(lines) - MAX_PROBLEMS
    lines = lines[:MAX_PROBLEMS] + ([f"and {more} more problem{'s' if more > 1 else ''}"] if more > 0 else [])
    if unknown:
        lines.append(unknown_names(unknown, model))
    said = "Invalid arguments: " + "; ".join(lines)
    return said if len(said) <= MAX_REFUSAL else said[: MAX_REFUSAL - 1] + "…"
