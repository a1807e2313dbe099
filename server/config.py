"""Settings from the environment: which CRMs are configured, where they live, and their secrets.

Secrets are `SecretStr`: their repr is masked, so a settings object can be logged or shown in a
traceback without leaking the API key or token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLAZBOT_HOSTS = {
    "https://api.plazbot.com": "Plazbot",
    "https://api.wabotify.com": "Wabotify (America)",
    "https://apieu.wabotify.com": "Wabotify (Europe)",
}
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


@dataclass(frozen=True, slots=True)
class LeadConnectorAccount:
    base_url: str
    token: SecretStr
    location_id: str
    pipeline_id: str | None


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

    @field_validator("plazbot_base_url", "leadconnector_base_url")
    @classmethod
    def _plain_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        host = urlsplit(value).hostname or ""
        # Plain http would send the key in clear text; only a loopback sandbox may use it.
        if not (value.startswith("https://") or (value.startswith("http://") and host in _LOOPBACK)):
            raise ValueError("must start with https:// (http:// only for 127.0.0.1 or localhost)")
        return value

    @field_validator("plazbot_api_key", "leadconnector_token")
    @classmethod
    def _header_safe_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip()
        if not _HEADER_SAFE.fullmatch(text):
            raise ValueError("must be the key as issued: printable ASCII without spaces")
        return SecretStr(text)

    @field_validator("plazbot_workspace_id", "leadconnector_location_id", "leadconnector_pipeline_id")
    @classmethod
    def _plain_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not _ID.fullmatch(value):
            raise ValueError("must be an id as the CRM shows it (letters, digits, '-', '_', '.', ':')")
        return value

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
    """What the server is built from: the configured accounts (at least one) and the HTTP timeout."""

    plazbot: PlazbotAccount | None
    leadconnector: LeadConnectorAccount | None
    http_timeout: float = 15.0
    sandbox: bool = False
    call_budget: float = 20.0
    duplicate_window: float = 600.0
    rate_limit: int = 100
    rate_window: float = 10.0
    journal: str = ""  # SQLite path; "" means the default under the user's state directory

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so outgoing text can be scrubbed of them as a last line of defence."""
        found: list[str] = []
        if self.plazbot:
            found.append(self.plazbot.api_key.get_secret_value())
        if self.leadconnector:
            found.append(self.leadconnector.token.get_secret_value())
        return tuple(s for s in found if s)


def load_config() -> ServerConfig:
    """Read the environment; raise ConfigError naming the variables when no CRM is usable."""
    try:
        settings = Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"Invalid configuration: {_first_error(exc)}") from None
    config = ServerConfig(
        settings.plazbot(),
        settings.leadconnector(),
        settings.http_timeout,
        call_budget=settings.call_budget,
        duplicate_window=settings.duplicate_window,
        rate_limit=settings.rate_limit,
        rate_window=settings.rate_window,
        journal=settings.journal or "",
    )
    if config.plazbot is None and config.leadconnector is None:
        raise ConfigError("No CRM is configured.\n" + CONFIG_HELP)
    return config


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
    shutdown_grace: int = Field(15, ge=0, le=300, validation_alias="OPPORTUNITY_MCP_SHUTDOWN_GRACE")

    def hosts(self) -> list[str]:
        return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]

    def origins(self) -> list[str]:
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]


def load_http_settings() -> HttpSettings:
    try:
        return HttpSettings()
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {_first_error(exc)}") from None
