"""Accounts from where an operator writes them: one per CRM family from the environment (the single
account variables, PLAZBOT_API_KEY …) and any number from a TOML config file, secrets always in
variables. Generic over the registered families: their keys name the variables and the file's keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from opportunity_mcp.crm.base import Account, Family
from opportunity_mcp.crm.families import FAMILIES
from opportunity_mcp.values import ConfigError, base_url, crm_id, secret

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)

# The environment variables that configure the CRMs, as hosts and docs spell them.
CRM_VARIABLES: tuple[str, ...] = tuple(v for family in FAMILIES.values() for v in family.variables())


def config_help() -> str:
    lines = ["Configure at least one CRM:"]
    for family in FAMILIES.values():
        others = [url for url in family.hosts if url != family.default_url]
        also = f"; {' or '.join(others)} for the others" if others else ""
        lines.append(
            f"  {family.label}: {family.variable(family.secret_key)} and {family.variable(family.target_key)} "
            f"({family.variable('base_url')} defaults to {family.default_url}{also})"
        )
    lines.append("or start with --sandbox to use the embedded sandbox CRM.")
    return "\n".join(lines)


def _checked(family: Family, key: str, value: str, where: str) -> str:
    try:
        return base_url(value) if key == "base_url" else crm_id(value)
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {where}: {exc}") from None


def _secret(value: str, where: str) -> SecretStr:
    try:
        return secret(value)
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {where}: {exc}") from None


def from_environment(family: Family, environ: Mapping[str, str]) -> Account | None:
    """The family's single account from its variables; None when none of its two main ones is set."""
    key_var, target_var = family.variable(family.secret_key), family.variable(family.target_key)
    raw_secret, raw_target = environ.get(key_var, "").strip(), environ.get(target_var, "").strip()
    if not raw_secret and not raw_target:
        return None
    if not raw_secret:
        raise ConfigError(f"{target_var} is set but {key_var} is missing.")
    if not raw_target:
        raise ConfigError(f"{key_var} is set but {target_var} is missing.")
    url_var = family.variable("base_url")
    url = _checked(family, "base_url", environ.get(url_var, "").strip() or family.default_url, url_var)
    options = tuple(
        (key, _checked(family, key, value, family.variable(key)))
        for key in family.options
        if (value := environ.get(family.variable(key), "").strip())
    )
    return Account(
        family=family.name,
        name=family.name,
        base_url=url,
        secret=_secret(raw_secret, key_var),
        target=_checked(family, family.target_key, raw_target, target_var),
        options=options,
        secret_source=key_var,
    )


class AccountEntry(BaseModel):
    """One `[accounts.NAME]` table: the family, where its secret is, and the family's own keys."""

    model_config = ConfigDict(extra="allow")

    crm: str
    secret_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    base_url: str | None = None

    @field_validator("crm")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in FAMILIES:
            raise ValueError(f"Input should be {' or '.join(repr(n) for n in FAMILIES)}")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else base_url(value)


def from_file_entry(name: str, entry: AccountEntry, environ: Mapping[str, str], path: str) -> Account:
    """An account of the config file; its keys checked against its family's."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{path}: accounts.{name}: a name is letters, digits, '-', '_' or '.'")
    family = FAMILIES[entry.crm]
    extra: dict[str, Any] = dict(entry.model_extra or {})
    allowed = {family.target_key, *family.options}
    if family.target_key not in extra or not set(extra) <= allowed:
        unknown = sorted(set(extra) - allowed)
        takes = " and ".join([family.target_key, *(f"optional {o}" for o in family.options)])
        problem = f"; unknown keys: {', '.join(unknown)} (Extra inputs are not permitted)" if unknown else ""
        raise ConfigError(f"{path}: accounts.{name}: a {family.name} account takes {takes}{problem}")
    values = {}
    for key, value in extra.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}: accounts.{name}.{key}: must be text")
        values[key] = _checked(family, key, value, f"accounts.{name}.{key}")
    raw = environ.get(entry.secret_env, "").strip()
    if not raw:
        raise ConfigError(f"accounts.{name}: the variable {entry.secret_env} (its secret) is not set")
    return Account(
        family=family.name,
        name=name,
        base_url=entry.base_url or family.default_url,
        secret=_secret(raw, f"accounts.{name}: {entry.secret_env}"),
        target=values.pop(family.target_key),
        options=tuple(values.items()),
        secret_source=entry.secret_env,
    )
