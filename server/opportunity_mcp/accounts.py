"""Accounts from where an operator writes them: one per CRM family from the environment (the single
account variables, PLAZBOT_API_KEY …) and any number from a TOML config file, secrets always in
variables. Generic over the registered families: their keys name the variables and the file's keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from opportunity_mcp.confirm_policy import parse_policy
from opportunity_mcp.crm.base import COMMON_OPTIONS, Account, Family
from opportunity_mcp.crm.families import FAMILIES
from opportunity_mcp.numbers import NUMBER_FORMATS
from opportunity_mcp.phones import is_country
from opportunity_mcp.values import ConfigError, base_url, crm_id, is_email, secret, variable_name

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
# Keys that would hold a secret in the file itself: refused, whatever the family.
_SECRET_KEYS = frozenset({"secret", "api_key", "token", "password", "key"})

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
    lines.append(
        "or use the embedded sandbox CRM: start with --sandbox, or set OPPORTUNITY_MCP_SANDBOX=true "
        '(the bundle\'s "Use the sandbox CRM" switch).'
    )
    return "\n".join(lines)


def _option_keys(family: Family) -> tuple[str, ...]:
    return (*family.options, *COMMON_OPTIONS)


def _checked(family: Family, key: str, value: str, where: str) -> str:
    value = value.strip()
    if key == "number_format" and value not in NUMBER_FORMATS:
        raise ConfigError(f"Invalid configuration: {where}: must be {' or '.join(map(repr, NUMBER_FORMATS))}")
    if key == "default_country":
        if not is_country(value.upper()):
            raise ConfigError(f"Invalid configuration: {where}: must be a two-letter ISO country code such as PE")
        return value.upper()
    if key == "confirm":
        try:
            parse_policy(value)
        except ValueError as exc:
            raise ConfigError(f"Invalid configuration: {where}: {exc}") from None
        return value
    if key == "open_deals" and value not in ("warn", "refuse"):
        raise ConfigError(f"Invalid configuration: {where}: must be 'warn' or 'refuse'")
    if key in ("number_format", "open_deals"):
        return value
    try:
        return base_url(value) if key == "base_url" else crm_id(value)
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {where}: {exc}") from None


def _secret(value: str, where: str) -> SecretStr:
    try:
        return secret(value)
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {where}: {exc}") from None


def _credential(family: Family, environ: Mapping[str, str]) -> tuple[str, str, tuple[tuple[str, str], ...]] | None:
    """The secret, where it came from, and the login's identity as an option: the family's key, or
    (where the family has one) its login. None when neither is set; both is refused."""
    key_var = family.variable(family.secret_key)
    raw_secret = environ.get(key_var, "").strip()
    if family.login is None:
        return (raw_secret, key_var, ()) if raw_secret else None
    who_key, password_key = family.login
    who_var, password_var = family.variable(who_key), family.variable(password_key)
    who, password = environ.get(who_var, "").strip(), environ.get(password_var, "").strip()
    if raw_secret and (who or password):
        raise ConfigError(f"set either {key_var} or {who_var} + {password_var}, not both")
    if raw_secret:
        return raw_secret, key_var, ()
    if not who and not password:
        return None
    if not who or not password:
        raise ConfigError(f"{who_var} and {password_var} go together: set both to log in, or set {key_var}")
    return password, f"{who_var} and {password_var}", ((who_key, _login_name(who, who_var)),)


def _login_name(value: str, where: str) -> str:
    if not is_email(value):
        raise ConfigError(f"Invalid configuration: {where}: must be the email address you log in with")
    return value


def from_environment(family: Family, environ: Mapping[str, str]) -> Account | None:
    """The family's single account from its variables; None when none of its main ones is set."""
    key_var, target_var = family.variable(family.secret_key), family.variable(family.target_key)
    credential = _credential(family, environ)
    raw_target = environ.get(target_var, "").strip()
    if credential is None and not raw_target:
        return None
    if credential is None:
        login = f" (or {' + '.join(family.variable(k) for k in family.login)})" if family.login else ""
        raise ConfigError(f"{target_var} is set but {key_var}{login} is missing.")
    if not raw_target:
        raise ConfigError(f"{credential[1]} is set but {target_var} is missing.")
    raw_secret, source, login_options = credential
    url_var = family.variable("base_url")
    url = _checked(family, "base_url", environ.get(url_var, "").strip() or family.default_url, url_var)
    options = login_options + tuple(
        (key, _checked(family, key, value, family.variable(key)))
        for key in _option_keys(family)
        if (value := environ.get(family.variable(key), "").strip())
    )
    return Account(
        family=family.name,
        name=family.name,
        base_url=url,
        secret=_secret(raw_secret, source),
        target=_checked(family, family.target_key, raw_target, target_var),
        options=options,
        secret_source=source,
    )


class AccountEntry(BaseModel):
    """One `[accounts.NAME]` table: the family, where its secret is, and the family's own keys."""

    model_config = ConfigDict(extra="allow")

    crm: str
    secret_env: str
    base_url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_secret_here(cls, data: Any) -> Any:
        inline = sorted(set(data) & _SECRET_KEYS) if isinstance(data, dict) else []
        if inline:
            raise ValueError(
                f"{inline[0]}: secrets never go in this file; put it in an environment variable and name that "
                'variable here as secret_env = "VARIABLE"'
            )
        return data

    @field_validator("secret_env")
    @classmethod
    def _variable(cls, value: str) -> str:
        return variable_name(value)

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
    who = family.login[0] if family.login else None
    login = extra.pop(who, None) if who else None
    allowed = {family.target_key, *_option_keys(family)}
    if family.target_key not in extra or not set(extra) <= allowed:
        unknown = sorted(set(extra) - allowed)
        optional = [*_option_keys(family), *([f"{who} (then secret_env holds the password)"] if who else [])]
        takes = " and ".join([family.target_key, *(f"optional {o}" for o in optional)])
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
    login_options: tuple[tuple[str, str], ...] = ()
    if who is not None and login is not None:
        if not isinstance(login, str):
            raise ConfigError(f"{path}: accounts.{name}.{who}: must be text")
        login_options = ((who, _login_name(login.strip(), f"accounts.{name}.{who}")),)
    return Account(
        family=family.name,
        name=name,
        base_url=entry.base_url or family.default_url,
        secret=_secret(raw, f"accounts.{name}: {entry.secret_env}"),
        target=values.pop(family.target_key),
        options=login_options + tuple(values.items()),
        secret_source=entry.secret_env,
    )
