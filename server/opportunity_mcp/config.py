"""What the server is built from: its accounts (see `accounts`), the bearer tokens HTTP clients
present, and the limits of a call, read from the environment and an optional TOML file.

Secrets are `SecretStr`: their repr is masked, so a config can be logged or shown in a traceback
without leaking an API key or token.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import opportunity_mcp.defaults as D
from opportunity_mcp.accounts import CRM_VARIABLES, AccountEntry, config_help, from_environment, from_file_entry
from opportunity_mcp.crm.base import Account
from opportunity_mcp.crm.families import FAMILIES
from opportunity_mcp.journal.base import journal_password
from opportunity_mcp.values import ConfigError, base_url, first_error, variable_name

__all__ = ["CRM_VARIABLES", "Account", "ConfigError", "ServerConfig", "TokenGrant", "load_config"]


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A bearer token HTTP clients may present, known only by its SHA-256, and the accounts it may
    write to (by name; "*" for all)."""

    name: str
    digest: str
    accounts: frozenset[str]
    connector: bool = False  # a code a person types on the OAuth consent page, not a bearer token

    def allows(self, account: str) -> bool:
        return "*" in self.accounts or account in self.accounts


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Settings(BaseSettings):
    """The server-wide environment variables (exact names; empty values count as unset)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", case_sensitive=True)

    http_timeout: float = Field(D.HTTP_TIMEOUT, gt=0, le=120, validation_alias="OPPORTUNITY_MCP_HTTP_TIMEOUT")
    call_budget: float = Field(D.CALL_BUDGET, gt=0, le=600, validation_alias="OPPORTUNITY_MCP_CALL_BUDGET")
    duplicate_window: float = Field(D.DUPLICATE_WINDOW, ge=0, validation_alias="OPPORTUNITY_MCP_DUPLICATE_WINDOW")
    lookup_ttl: float = Field(D.LOOKUP_TTL, ge=0, le=86400, validation_alias="OPPORTUNITY_MCP_LOOKUP_TTL")
    rate_limit: int = Field(D.RATE_LIMIT, ge=1, validation_alias="OPPORTUNITY_MCP_RATE_LIMIT")
    rate_window: float = Field(D.RATE_WINDOW, gt=0, validation_alias="OPPORTUNITY_MCP_RATE_WINDOW")
    plazbot_pages: int = Field(D.PLAZBOT_PAGES, ge=1, le=500, validation_alias="OPPORTUNITY_MCP_PLAZBOT_PAGES")
    settle: float = Field(D.SETTLE, ge=0, le=60, validation_alias="OPPORTUNITY_MCP_SETTLE")
    reconcile_every: float = Field(
        D.RECONCILE_EVERY, ge=0, le=86400, validation_alias="OPPORTUNITY_MCP_RECONCILE_EVERY"
    )
    journal: str | None = Field(None, validation_alias="OPPORTUNITY_MCP_JOURNAL")
    public_url: str | None = Field(None, validation_alias="OPPORTUNITY_MCP_PUBLIC_URL")
    config_file: str | None = Field(None, validation_alias="OPPORTUNITY_MCP_CONFIG")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", validation_alias="OPPORTUNITY_MCP_LOG_LEVEL"
    )

    @field_validator("public_url")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        return None if value is None else base_url(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the server is built from: the accounts it may write to (at least one), the bearer tokens
    HTTP clients present, and the limits of a call."""

    accounts: tuple[Account, ...]
    tokens: tuple[TokenGrant, ...] = ()
    http_timeout: float = D.HTTP_TIMEOUT
    sandbox: bool = False
    call_budget: float = D.CALL_BUDGET
    duplicate_window: float = D.DUPLICATE_WINDOW
    lookup_ttl: float = D.LOOKUP_TTL
    rate_limit: int = D.RATE_LIMIT
    rate_window: float = D.RATE_WINDOW
    plazbot_pages: int = D.PLAZBOT_PAGES
    settle: float = D.SETTLE
    reconcile_every: float = D.RECONCILE_EVERY
    public_url: str | None = None  # where clients reach this server (OAuth's issuer and resource)
    journal: str = ""  # a SQLite path or a postgresql:// URL; "" means the default SQLite file
    # Plain values read for tokens given by environment reference: scrubbed like any secret.
    token_values: tuple[SecretStr, ...] = ()

    def accounts_of(self, family: str) -> tuple[Account, ...]:
        return tuple(a for a in self.accounts if a.family == family)

    def first(self, family: str) -> Account | None:
        """The first account of a family, if any."""
        return next(iter(self.accounts_of(family)), None)

    def families(self) -> frozenset[str]:
        return frozenset(a.family for a in self.accounts)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so outgoing text can be scrubbed of them as a last line of defence."""
        found = [a.secret for a in self.accounts]
        found += self.token_values
        if password := journal_password(self.journal):
            found.append(SecretStr(password))
        return tuple(v for s in found if (v := s.get_secret_value()))


_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)


class _TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[str] = Field(min_length=1)
    sha256: str | None = None
    env: str | None = None

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.fullmatch(value):
            raise ValueError(
                "must be the token's SHA-256 as 64 lowercase hex characters (`opportunity-mcp token` prints it)"
            )
        return value

    @field_validator("env")
    @classmethod
    def _variable(cls, value: str | None) -> str | None:
        return None if value is None else variable_name(value)

    @model_validator(mode="after")
    def _one_source(self) -> _TokenEntry:
        if (self.sha256 is None) == (self.env is None):
            raise ValueError("give exactly one of sha256 (the token's SHA-256, hex) or env (a variable holding it)")
        return self


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: dict[str, AccountEntry] = {}
    tokens: dict[str, _TokenEntry] = {}
    connectors: dict[str, _TokenEntry] = {}  # OAuth connector codes: the same entries as tokens


def read_config_file(path: str, environ: Mapping[str, str]) -> tuple[list[Account], list[TokenGrant], list[SecretStr]]:
    """The accounts and tokens of a TOML config file; secrets come from the variables it names."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    try:
        parsed = _ConfigFile.model_validate(raw)
    except ValueError as exc:
        raise ConfigError(f"{path}: {first_error(exc)}") from None
    accounts = [from_file_entry(name, entry, environ, path) for name, entry in parsed.accounts.items()]
    grants: list[TokenGrant] = []
    values: list[SecretStr] = []
    entries = [("tokens", n, t) for n, t in parsed.tokens.items()]
    for table, name, token in [*entries, *(("connectors", n, t) for n, t in parsed.connectors.items())]:
        digest = token.sha256
        if token.env is not None:
            value = environ.get(token.env, "").strip()
            if len(value) < 16:
                raise ConfigError(f"{table}.{name}: the variable {token.env} must hold the code (16+ characters)")
            digest = token_digest(value)
            values.append(SecretStr(value))
        assert digest is not None
        grants.append(TokenGrant(name, digest, frozenset(token.accounts), connector=table == "connectors"))
    return accounts, grants, values


def load_settings() -> Settings:
    """The server-wide variables, checked; ConfigError names the variable and what it must be."""
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"Invalid configuration: {first_error(exc)}") from None


def with_settings(config: ServerConfig, settings: Settings) -> ServerConfig:
    """`config` with the limits and journal the variables set (for a config built elsewhere: the sandbox's)."""
    return replace(
        config,
        http_timeout=settings.http_timeout,
        call_budget=settings.call_budget,
        duplicate_window=settings.duplicate_window,
        lookup_ttl=settings.lookup_ttl,
        rate_limit=settings.rate_limit,
        rate_window=settings.rate_window,
        plazbot_pages=settings.plazbot_pages,
        settle=settings.settle,
        reconcile_every=settings.reconcile_every,
        public_url=settings.public_url,
        journal=settings.journal or config.journal,
    )


def check_config_file(path: str | None, settings: Settings) -> None:
    """Read the config file (`path`, else OPPORTUNITY_MCP_CONFIG) only to check it, as a real start would."""
    path = path or settings.config_file
    if path:
        read_config_file(path, os.environ)


def load_config(path: str | None = None) -> ServerConfig:
    """The config file (`path`, else OPPORTUNITY_MCP_CONFIG) and the environment's single accounts;
    raise ConfigError naming what to fix when no account is usable or two would collide."""
    settings = load_settings()
    accounts: list[Account] = []
    grants: list[TokenGrant] = []
    values: list[SecretStr] = []
    path = path or settings.config_file
    if path:
        accounts, grants, values = read_config_file(path, os.environ)
    for family in FAMILIES.values():
        single = from_environment(family, os.environ)
        if single is not None:
            accounts.append(single)
    if not accounts:
        raise ConfigError("No CRM is configured.\n" + config_help())
    if settings.journal and "://" in settings.journal:
        check_journal_url(settings.journal)
    _check_unique(accounts, grants)
    return with_settings(ServerConfig(tuple(accounts), tuple(grants), token_values=tuple(values)), settings)


def check_journal_url(url: str) -> None:
    """A journal URL must be a PostgreSQL URL that parses (said without echoing it: it may hold a password)."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("OPPORTUNITY_MCP_JOURNAL: a URL must start with postgresql:// (or give a SQLite file path)")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise ConfigError("OPPORTUNITY_MCP_JOURNAL: the postgresql:// URL does not parse") from None
    if not parts.hostname and "host=" not in parts.query:
        raise ConfigError("OPPORTUNITY_MCP_JOURNAL: the postgresql:// URL names no host")


def _check_unique(accounts: list[Account], grants: list[TokenGrant]) -> None:
    names: set[str] = set()
    targets: dict[tuple[str, str], str] = {}
    for account in accounts:
        if account.name in names:
            singles = ", ".join(repr(f) for f in FAMILIES)
            raise ConfigError(
                f"two accounts are named {account.name!r} (the environment's single accounts use {singles})"
            )
        names.add(account.name)
        where = (account.family, account.target)
        if where in targets:
            raise ConfigError(f"accounts {targets[where]!r} and {account.name!r} both write to {account.target}")
        targets[where] = account.name
    digests: set[str] = set()
    for grant in grants:
        unknown = sorted(grant.accounts - names - {"*"})
        if unknown:
            raise ConfigError(f"{_table(grant)}.{grant.name}: no account is named {', '.join(unknown)}")
        if grant.digest in digests:
            raise ConfigError(f"{_table(grant)}.{grant.name}: the same token or code is listed twice")
        digests.add(grant.digest)


def _table(grant: TokenGrant) -> str:
    return "connectors" if grant.connector else "tokens"


class HttpSettings(BaseSettings):
    """How the HTTP transport guards itself (read only when serving HTTP)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", case_sensitive=True)

    max_body: int = Field(256 * 1024, ge=1024, validation_alias="OPPORTUNITY_MCP_MAX_BODY")
    allowed_hosts: str = Field("", validation_alias="OPPORTUNITY_MCP_ALLOWED_HOSTS")
    allowed_origins: str = Field("", validation_alias="OPPORTUNITY_MCP_ALLOWED_ORIGINS")
    shutdown_grace: int = Field(25, ge=0, le=300, validation_alias="OPPORTUNITY_MCP_SHUTDOWN_GRACE")
    # Slow, idle and numerous connections (see `connections`).
    head_timeout: float = Field(D.HEAD_TIMEOUT, gt=0, le=300, validation_alias="OPPORTUNITY_MCP_HEAD_TIMEOUT")
    body_timeout: float = Field(D.BODY_TIMEOUT, gt=0, le=600, validation_alias="OPPORTUNITY_MCP_BODY_TIMEOUT")
    keep_alive: float = Field(D.KEEP_ALIVE, gt=0, le=300, validation_alias="OPPORTUNITY_MCP_KEEP_ALIVE")
    max_connections: int = Field(
        D.MAX_CONNECTIONS, ge=1, le=100_000, validation_alias="OPPORTUNITY_MCP_MAX_CONNECTIONS"
    )

    def hosts(self) -> list[str]:
        return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]

    def origins(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]


def load_http_settings() -> HttpSettings:
    try:
        return HttpSettings()
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {first_error(exc)}") from None
