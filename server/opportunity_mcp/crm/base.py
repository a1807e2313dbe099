"""What every CRM family shares: the description of a family (`Family`), and what its client is
given: an account (where to write, with which secret) and the shared parts of the process it runs in
(the pooled HTTP client of its base URL, the rate limiter, the memory of learned request shapes).
Nothing here knows how an account was configured."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx2
from pydantic import SecretStr

from opportunity_mcp.crm.policy import RateLimiter


@dataclass(frozen=True, slots=True)
class Account:
    """One place the server may write to.

    `target` is the id that names it upstream (a Plazbot workspace, a LeadConnector location);
    `options` holds a family's extra settings (LeadConnector's default `pipeline_id`);
    `secret_source` says where the secret came from (a variable's name), for hints to operators."""

    family: str
    name: str
    base_url: str
    secret: SecretStr
    target: str
    options: tuple[tuple[str, str], ...] = ()
    secret_source: str = ""

    def option(self, key: str) -> str | None:
        return next((value for name, value in self.options if name == key), None)


# Keys every account may set, whatever its CRM: how it reads what people write (a number format such
# as "1.234,56", and the ISO country of phones given without their code), and which writes wait for a
# person to confirm them (`confirm_policy`).
COMMON_OPTIONS = ("number_format", "default_country", "confirm")


class ShapeMemory(Protocol):
    """Where a request shape an account accepts is remembered (the journal database)."""

    async def learned_shape(self, location: str) -> str | None: ...

    async def learn_shape(self, location: str, shape: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Wiring:
    """The process-wide parts a client shares with the others."""

    http: httpx2.AsyncClient
    limiter: RateLimiter
    shapes: ShapeMemory | None = None


class CrmClient(Protocol):
    """What every family's client offers the layer above; its writes are its own methods."""

    @property
    def account(self) -> Account: ...


@dataclass(frozen=True, slots=True)
class Family:
    """How one upstream API is reached and configured.

    Keys are settings' names: the single-account environment variables are NAME_KEY in upper case
    (PLAZBOT_API_KEY, LEADCONNECTOR_LOCATION_ID), and a config-file account takes the same keys."""

    name: str  # "plazbot"
    label: str  # for people: "Plazbot / Wabotify"
    default_url: str
    hosts: Mapping[str, str]  # known base URLs → what they are, for help texts
    secret_key: str  # "api_key"
    target_key: str  # "workspace_id"
    target_kind: str  # "workspace"
    options: tuple[str, ...]  # extra optional keys, e.g. ("pipeline_id",)
    connect: Callable[[Account, Wiring], CrmClient]
    # Keys of a login that may stand in for the secret (Plazbot: email + password); the account then
    # holds the password as its secret and the email among its options.
    login: tuple[str, str] | None = None

    def variable(self, key: str) -> str:
        return f"{self.name}_{key}".upper()

    def variables(self) -> tuple[str, ...]:
        """Every environment variable of its single account, as hosts and docs spell them."""
        keys = ("base_url", self.secret_key, *(self.login or ()), self.target_key, *self.options, *COMMON_OPTIONS)
        return tuple(self.variable(k) for k in keys)
