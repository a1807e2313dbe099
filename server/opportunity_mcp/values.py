"""Checks shared by every place a setting comes from (environment, config file): URLs, secrets, ids."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import SecretStr

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_HEADER_SAFE = re.compile(r"[!-~]{1,4096}", re.ASCII)
# ASCII only: ids travel in paths, headers and query strings. '.' and '..' would name another path.
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}", re.ASCII)
ID_RULE = "letters, digits, '-', '_', '.', ':'; at most 128; not '.' or '..'"


def is_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None and bool(value.strip("."))


_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def variable_name(value: str) -> str:
    """The name of an environment variable, as a config file names where a secret is."""
    if not _VARIABLE.fullmatch(value):
        raise ValueError("must be the name of an environment variable (letters, digits and _), not its value")
    return value


def is_email(value: str) -> bool:
    return _EMAIL.fullmatch(value) is not None


class ConfigError(Exception):
    """The configuration cannot start a server; the message says which variable to set."""


def base_url(value: str) -> str:
    value = value.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise ValueError("must be a URL like https://api.example.com") from None
    # Plain http would send the key in clear text; only a loopback sandbox may use it.
    if not (value.startswith("https://") or (value.startswith("http://") and host in LOOPBACK)):
        raise ValueError("must start with https:// (http:// only for 127.0.0.1 or localhost)")
    # Every request path is joined to it: a path, a query or a fragment would change them all.
    if parts.path or parts.query or parts.fragment or "?" in value or "#" in value or parts.username or not host:
        raise ValueError("must be the API's origin only, like https://api.example.com (no path, query or fragment)")
    return value


def secret(text: str) -> SecretStr:
    text = text.strip()
    if not _HEADER_SAFE.fullmatch(text):
        raise ValueError("must be the key as issued: printable ASCII without spaces")
    return SecretStr(text)


def crm_id(value: str) -> str:
    value = value.strip()
    if not is_id(value):
        raise ValueError(f"must be an id as the CRM shows it ({ID_RULE})")
    return value


# pydantic's words for the problems a setting can have, as a sentence's end.
_CONFIG_WORDS = {
    "missing": "is required",
    "extra_forbidden": "is not a key this table takes",
    "string_type": "must be text",
    "float_parsing": "must be a number",
    "int_parsing": "must be a whole number",
    "list_type": "must be a list",
}


def first_error(exc: ValueError) -> str:
    """The first problem of a pydantic ValidationError (or any ValueError), as one plain sentence
    naming the key: "tokens.bot.sha256: must be …"."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        for err in errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in err.get("loc", ()))
            said = _CONFIG_WORDS.get(err.get("type", "")) or str(err.get("msg", "invalid"))
            said = said.removeprefix("Value error, ").replace("Input should be", "must be")
            return f"{where}: {said}" if where else said
    return str(exc).splitlines()[0]
