"""Settings from the environment: which CRMs are configured, where they live, and their secrets.

Secrets are `SecretStr`: their repr is masked, so a settings object can be logged or shown in a
traceback without leaking the API key or token.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.journal.base import journal_password

PLAZBOT_HOSTS = {
    "https://api.plazbot.com": "Plazbot",
    "https://api.wabotify.com": "Wabotify (America)",
    "https://apieu.wabotify.com": "Wabotify (Europe)",
}
PLAZBOT_DEFAULT_URL = "https://api.plazbot.com"
LEADCONNECTOR_DEFAULT_URL = "https://services.leadconnectorhq.com"

CONFIG_HELP = (
    "Configure at least one CRM:\n"
    "  Plazbot / Wabotify: PLAZBOT_API_KEY and PLAZBOT_WORKSPACE_ID "
    "(PLAZBOT_BASE_URL defaults to https://api.plazbot.com; Wabotify uses https://api.wabotify.com "
    "or https://apieu.wabotify.com)\n"
    "  LeadConnector (HighLevel, Leadway): LEADCONNECTOR_TOKEN and LEADCONNECTOR_LOCATION_ID "
    "(optional LEADCONNECTOR_PIPELINE_ID; LEADCONNECTOR_BASE_URL defaults to "
    "https://services.leadconnectorhq.com)\n"
    "or start with --sandbox to use the embedded sandbox CRM."
)


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_HEADER_SAFE = re.compile(r"[!-~]{1,4096}", re.ASCII)
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}", re.ASCII)


class ConfigError(Exception):
    """The configuration cannot start a server; the message says which variable to set."""


@dataclass(frozen=True, slots=True)
class PlazbotAccount:
    base_url: str
    api_key: SecretStr
    workspace_id: str
    name: str = "plazbot"

    @property
    def target(self) -> str:
        """The id a tool call names to write here (workspaceId)."""
        return self.workspace_id


@dataclass(frozen=True, slots=True)
class LeadConnectorAccount:
    base_url: str
    token: SecretStr
    location_id: str
    pipeline_id: str | None
    name: str = "leadconnector"

    @property
    def target(self) -> str:
        """The id a tool call names to write here (locationId)."""
        return self.location_id


Account = PlazbotAccount | LeadConnectorAccount


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A bearer token HTTP clients may present, known only by its SHA-256, and the accounts it may
    write to (by name; "*" for all)."""

    name: str
    digest: str
    accounts: frozenset[str]

    def allows(self, account: str) -> bool:
        return "*" in self.accounts or account in self.accounts


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _url(value: str) -> str:
    value = value.strip().rstrip("/")
    host = urlsplit(value).hostname or ""
    # Plain http would send the key in clear text; only a loopback sandbox may use it.
    if not (value.startswith("https://") or (value.startswith("http://") and host in _LOOPBACK)):
        raise ValueError("must start with https:// (http:// only for 127.0.0.1 or localhost)")
    return value


def _secret(text: str) -> SecretStr:
    text = text.strip()
    if not _HEADER_SAFE.fullmatch(text):
        raise ValueError("must be the key as issued: printable ASCII without spaces")
    return SecretStr(text)


def _id(value: str) -> str:
    value = value.strip()
    if not _ID.fullmatch(value):
        raise ValueError("must be an id as the CRM shows it (letters, digits, '-', '_', '.', ':')")
    return value


class Settings(BaseSettings):
    """The environment variables the server reads (exact names; empty values count as unset)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", case_sensitive=True)

    plazbot_base_url: str = Field("https://api.plazbot.com", validation_alias="PLAZBOT_BASE_URL")
    plazbot_api_key: SecretStr | None = Field(None, validation_alias="PLAZBOT_API_KEY")
    plazbot_workspace_id: str | None = Field(None, validation_alias="PLAZBOT_WORKSPACE_ID")
    leadconnector_base_url: str = Field(LEADCONNECTOR_DEFAULT_URL, validation_alias="LEADCONNECTOR_BASE_URL")
    leadconnector_token: SecretStr | None = Field(None, validation_alias="LEADCONNECTOR_TOKEN")
    leadconnector_location_id: str | None = Field(None, validation_alias="LEADCONNECTOR_LOCATION_ID")
    leadconnector_pipeline_id: str | None = Field(None, validation_alias="LEADCONNECTOR_PIPELINE_ID")
    http_timeout: float = Field(15.0, gt=0, le=120, validation_alias="OPPORTUNITY_MCP_HTTP_TIMEOUT")
    call_budget: float = Field(20.0, gt=0, le=600, validation_alias="OPPORTUNITY_MCP_CALL_BUDGET")
    duplicate_window: float = Field(600.0, ge=0, validation_alias="OPPORTUNITY_MCP_DUPLICATE_WINDOW")
    rate_limit: int = Field(100, ge=1, validation_alias="OPPORTUNITY_MCP_RATE_LIMIT")
    rate_window: float = Field(10.0, gt=0, validation_alias="OPPORTUNITY_MCP_RATE_WINDOW")
    journal: str | None = Field(None, validation_alias="OPPORTUNITY_MCP_JOURNAL")
    config_file: str | None = Field(None, validation_alias="OPPORTUNITY_MCP_CONFIG")

    @field_validator("plazbot_base_url", "leadconnector_base_url")
    @classmethod
    def _plain_url(cls, value: str) -> str:
        return _url(value)

    @field_validator("plazbot_api_key", "leadconnector_token")
    @classmethod
    def _header_safe_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else _secret(value.get_secret_value())

    @field_validator("plazbot_workspace_id", "leadconnector_location_id", "leadconnector_pipeline_id")
    @classmethod
    def _plain_id(cls, value: str | None) -> str | None:
        return None if value is None else _id(value)

    def plazbot(self) -> PlazbotAccount | None:
        """The Plazbot / Wabotify account, or None when it is not configured at all."""
        key, workspace = self.plazbot_api_key, self.plazbot_workspace_id
        if key is None and workspace is None:
            return None
        if key is None:
            raise ConfigError("PLAZBOT_WORKSPACE_ID is set but PLAZBOT_API_KEY is missing.")
        if workspace is None:
            raise ConfigError("PLAZBOT_API_KEY is set but PLAZBOT_WORKSPACE_ID is missing.")
        return PlazbotAccount(self.plazbot_base_url, key, workspace)

    def leadconnector(self) -> LeadConnectorAccount | None:
        """The LeadConnector account, or None when it is not configured at all."""
        token, location = self.leadconnector_token, self.leadconnector_location_id
        if token is None and location is None:
            return None
        if token is None:
            raise ConfigError("LEADCONNECTOR_LOCATION_ID is set but LEADCONNECTOR_TOKEN is missing.")
        if location is None:
            raise ConfigError("LEADCONNECTOR_TOKEN is set but LEADCONNECTOR_LOCATION_ID is missing.")
        return LeadConnectorAccount(self.leadconnector_base_url, token, location, self.leadconnector_pipeline_id)


# The environment variables that configure the CRMs, as hosts and docs spell them.
CRM_VARIABLES: tuple[str, ...] = tuple(
    str(field.validation_alias)
    for field in Settings.model_fields.values()
    if str(field.validation_alias).startswith(("PLAZBOT_", "LEADCONNECTOR_"))
)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the server is built from: the accounts it may write to (at least one), the bearer tokens
    HTTP clients present, and the limits of a call."""

    accounts: tuple[Account, ...]
    tokens: tuple[TokenGrant, ...] = ()
    http_timeout: float = 15.0
    sandbox: bool = False
    call_budget: float = 20.0
    duplicate_window: float = 600.0
    rate_limit: int = 100
    rate_window: float = 10.0
    journal: str = ""  # a SQLite path or a postgresql:// URL; "" means the default SQLite file
    # Plain values read for tokens given by environment reference: scrubbed like any secret.
    token_values: tuple[SecretStr, ...] = ()

    @property
    def plazbot_accounts(self) -> tuple[PlazbotAccount, ...]:
        return tuple(a for a in self.accounts if isinstance(a, PlazbotAccount))

    @property
    def leadconnector_accounts(self) -> tuple[LeadConnectorAccount, ...]:
        return tuple(a for a in self.accounts if isinstance(a, LeadConnectorAccount))

    @property
    def plazbot(self) -> PlazbotAccount | None:
        """The first Plazbot / Wabotify account, if any."""
        return next(iter(self.plazbot_accounts), None)

    @property
    def leadconnector(self) -> LeadConnectorAccount | None:
        """The first LeadConnector account, if any."""
        return next(iter(self.leadconnector_accounts), None)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so outgoing text can be scrubbed of them as a last line of defence."""
        found = [a.api_key if isinstance(a, PlazbotAccount) else a.token for a in self.accounts]
        found += self.token_values
        if password := journal_password(self.journal):
            found.append(SecretStr(password))
        return tuple(v for s in found if (v := s.get_secret_value()))


class _AccountEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    crm: Literal["plazbot", "leadconnector"]
    secret_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    base_url: str | None = None
    workspace_id: str | None = None
    location_id: str | None = None
    pipeline_id: str | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value)

    @field_validator("workspace_id", "location_id", "pipeline_id")
    @classmethod
    def _ids(cls, value: str | None) -> str | None:
        return None if value is None else _id(value)

    @model_validator(mode="after")
    def _ids_fit_the_crm(self) -> _AccountEntry:
        if self.crm == "plazbot" and (self.workspace_id is None or self.location_id or self.pipeline_id):
            raise ValueError("a plazbot account takes workspace_id (and no location_id or pipeline_id)")
        if self.crm == "leadconnector" and (self.location_id is None or self.workspace_id):
            raise ValueError("a leadconnector account takes location_id and optional pipeline_id (no workspace_id)")
        return self


class _TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[str] = Field(min_length=1)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _one_source(self) -> _TokenEntry:
        if (self.sha256 is None) == (self.env is None):
            raise ValueError("give exactly one of sha256 (the token's SHA-256, hex) or env (a variable holding it)")
        return self


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: dict[str, _AccountEntry] = {}
    tokens: dict[str, _TokenEntry] = {}


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)


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
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    accounts: list[Account] = []
    for name, entry in parsed.accounts.items():
        if not _NAME.fullmatch(name):
            raise ConfigError(f"{path}: accounts.{name}: a name is letters, digits, '-', '_' or '.'")
        value = environ.get(entry.secret_env, "").strip()
        if not value:
            raise ConfigError(f"accounts.{name}: the variable {entry.secret_env} (its secret) is not set")
        try:
            secret = _secret(value)
        except ValueError as exc:
            raise ConfigError(f"accounts.{name}: {entry.secret_env} {exc}") from None
        if entry.crm == "plazbot":
            assert entry.workspace_id is not None
            url = entry.base_url or PLAZBOT_DEFAULT_URL
            accounts.append(PlazbotAccount(url, secret, entry.workspace_id, name))
        else:
            assert entry.location_id is not None
            url = entry.base_url or LEADCONNECTOR_DEFAULT_URL
            accounts.append(LeadConnectorAccount(url, secret, entry.location_id, entry.pipeline_id, name))
    grants: list[TokenGrant] = []
    values: list[SecretStr] = []
    for name, token in parsed.tokens.items():
        digest = token.sha256
        if token.env is not None:
            value = environ.get(token.env, "").strip()
            if len(value) < 16:
                raise ConfigError(f"tokens.{name}: the variable {token.env} must hold the token (16+ characters)")
            digest = token_digest(value)
            values.append(SecretStr(value))
        assert digest is not None
        grants.append(TokenGrant(name, digest, frozenset(token.accounts)))
    return accounts, grants, values


def load_config(path: str | None = None) -> ServerConfig:
    """The config file (`path`, else OPPORTUNITY_MCP_CONFIG) and the environment's single accounts;
    raise ConfigError naming what to fix when no account is usable or two would collide."""
    try:
        settings = Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"Invalid configuration: {_first_error(exc)}") from None
    accounts: list[Account] = []
    grants: list[TokenGrant] = []
    values: list[SecretStr] = []
    path = path or settings.config_file
    if path:
        accounts, grants, values = read_config_file(path, os.environ)
    for single in (settings.plazbot(), settings.leadconnector()):
        if single is not None:
            accounts.append(single)
    if not accounts:
        raise ConfigError("No CRM is configured.\n" + CONFIG_HELP)
    if settings.journal and "://" in settings.journal:
        check_journal_url(settings.journal)
    _check_unique(accounts, grants)
    return ServerConfig(
        tuple(accounts),
        tuple(grants),
        settings.http_timeout,
        call_budget=settings.call_budget,
        duplicate_window=settings.duplicate_window,
        rate_limit=settings.rate_limit,
        rate_window=settings.rate_window,
        journal=settings.journal or "",
        token_values=tuple(values),
    )


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
    targets: dict[tuple[type, str], str] = {}
    for account in accounts:
        if account.name in names:
            raise ConfigError(
                f"two accounts are named {account.name!r} (the environment's single accounts use "
                "'plazbot' and 'leadconnector')"
            )
        names.add(account.name)
        where = (type(account), account.target)
        if where in targets:
            raise ConfigError(f"accounts {targets[where]!r} and {account.name!r} both write to {account.target}")
        targets[where] = account.name
    digests: set[str] = set()
    for grant in grants:
        unknown = sorted(grant.accounts - names - {"*"})
        if unknown:
            raise ConfigError(f"tokens.{grant.name}: no account is named {', '.join(unknown)}")
        if grant.digest in digests:
            raise ConfigError(f"tokens.{grant.name}: the same token is listed twice")
        digests.add(grant.digest)


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        for err in errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            return f"{where}: {err.get('msg', 'invalid')}"
    return str(exc).splitlines()[0]


class HttpSettings(BaseSettings):
    """How the HTTP transport guards itself (read only when serving HTTP)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", case_sensitive=True)

    max_body: int = Field(256 * 1024, ge=1024, validation_alias="OPPORTUNITY_MCP_MAX_BODY")
    allowed_hosts: str = Field("", validation_alias="OPPORTUNITY_MCP_ALLOWED_HOSTS")
    allowed_origins: str = Field("", validation_alias="OPPORTUNITY_MCP_ALLOWED_ORIGINS")
    shutdown_grace: int = Field(25, ge=0, le=300, validation_alias="OPPORTUNITY_MCP_SHUTDOWN_GRACE")

    def hosts(self) -> list[str]:
        return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]

    def origins(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]


def load_http_settings() -> HttpSettings:
    try:
        return HttpSettings()
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {_first_error(exc)}") from None
