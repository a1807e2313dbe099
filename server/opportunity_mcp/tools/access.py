"""What a tool call works with: the state the lifespan holds (one client per account, the journal,
the limits), the caller's allowance, and its own arguments validated into one-line refusals."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ValidationError

import opportunity_mcp.defaults as D
from opportunity_mcp.crm.base import CrmClient
from opportunity_mcp.journal import Journal
from opportunity_mcp.models import Reading
from opportunity_mcp.numbers import number_format
from opportunity_mcp.scrub import scrub
from opportunity_mcp.tools.references import ReferenceCache
from opportunity_mcp.untrusted import control_characters
from opportunity_mcp.validation import MAX_ARGUMENTS, describe_validation, unknown_names

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound=CrmClient)


@dataclass(frozen=True, slots=True)
class State:
    """What the lifespan holds for the tools: one client per configured account, and the journal.

    `open_access` is true on stdio and with --no-auth: every configured account may be written to.
    Otherwise the caller's bearer token names the accounts it may write to."""

    clients: tuple[CrmClient, ...]
    journal: Journal
    call_budget: float = D.CALL_BUDGET
    plazbot_pages: int = D.PLAZBOT_PAGES
    duplicate_window: float = D.DUPLICATE_WINDOW
    settle: float = D.SETTLE  # seconds before a create whose answer was lost may count as absent
    open_access: bool = True
    mid_call_requests: bool = True  # the transport carries a request to the client mid-call (not stateless HTTP)
    references: ReferenceCache = field(default_factory=ReferenceCache)

    @staticmethod
    def scrub(text: str) -> str:
        """`text` without any secret the process knows (configured, or learned: login tokens)."""
        return scrub(text)

    def usable(self, kind: type[C], allowed: frozenset[str] | None) -> list[C]:
        """The clients of type `kind` whose accounts `allowed` names (None: every one)."""
        return [c for c in self.clients if isinstance(c, kind) and (allowed is None or c.account.name in allowed)]

    def allowed(self) -> frozenset[str] | None:
        """The account names this call may write to; None for all of them."""
        if self.open_access:
            return within_path(None)
        token = get_access_token()
        if token is None:  # the HTTP layer lets no call through without a token; fail closed anyway
            raise ToolError("Not authenticated: send the bearer token this server gave you.")
        return scoped_accounts(token.scopes)


# The account a per-account URL (/a/{account}/mcp) serves, set by the HTTP layer for its request.
PATH_ACCOUNT: ContextVar[str | None] = ContextVar("opportunity_mcp_path_account", default=None)


def within_path(allowed: frozenset[str] | None) -> frozenset[str] | None:
    """`allowed` narrowed to the account the request's URL names, if it names one."""
    path = PATH_ACCOUNT.get()
    if path is None:
        return allowed
    return frozenset({path}) if allowed is None else allowed & {path}


def scoped_accounts(scopes: Collection[str]) -> frozenset[str] | None:
    """The account names a token's scopes allow (its scopes are account names, or "*"), within the
    account the request's URL names; None: all."""
    return within_path(None if "*" in scopes else frozenset(scopes))


def idempotency_key(ctx: Context[Any, Any], argument: str | None) -> str | None:
    """The call's idempotency key, from whichever channel the client can use: the argument, the
    request's `_meta.idempotencyKey`, or the HTTP header `Idempotency-Key`. Two different keys are
    refused: the write would be guarded by one and retried by the other."""
    request_context = ctx.request_context
    meta = request_context.meta
    request = request_context.request
    headers = getattr(request, "headers", None)
    channels = {
        "idempotencyKey": argument,
        "_meta.idempotencyKey": meta.get("idempotencyKey") if isinstance(meta, Mapping) else None,
        "the Idempotency-Key header": headers.get("idempotency-key") if isinstance(headers, Mapping) else None,
    }
    found = {name: value.strip() for name, value in channels.items() if isinstance(value, str) and value.strip()}
    if len(set(found.values())) > 1:
        raise ToolError(f"Invalid arguments: idempotencyKey: {' and '.join(found)} carry different keys; send one key")
    key = next(iter(found.values()), None)
    if key is not None and (len(key) > 200 or control_characters(key)):
        raise ToolError("Invalid arguments: idempotencyKey: must be text of 1 to 200 characters, no control characters")
    if key is not None and key.startswith("confirm:"):  # the keys a confirmation code gives its write
        raise ToolError("Invalid arguments: idempotencyKey: must not start with 'confirm:' (the server's own keys)")
    return key


def state_of(ctx: Context[Any, Any]) -> State:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, State)
    return state


def pick(state: State, kind: type[C], wanted: str | None, field: str, what: str) -> C:
    """The client of type `kind` for the account a call names (`wanted`, passed as argument `field`;
    a `what` is a workspace or a location), or the only one the caller may write to.

    Nothing is sent when the account is not one the caller may write to, and a caller that may write
    to several must say which: a bot fleet's writes never land in a workspace by default."""
    usable = state.usable(kind, state.allowed())
    if not usable:
        raise ToolError(f"Not allowed: this connection may not write to any {what} of this CRM.")
    if wanted is None:
        if len(usable) > 1:
            choices = ", ".join(c.account.target for c in usable)
            raise ToolError(f"Invalid arguments: {field}: required, since you may write to several: {choices}")
        return usable[0]
    for client in usable:
        if client.account.target == wanted:
            return client
    choices = ", ".join(c.account.target for c in usable)
    raise ToolError(
        f"Not allowed: {field}: not a {what} this connection may write to (allowed: {choices}); nothing was sent."
    )


# Arguments clients add on their own (n8n's MCP Client Tool adds toolCallId, sometimes sessionId):
# bookkeeping of theirs, never part of a write, never sent upstream.
BOOKKEEPING = frozenset({"toolCallId", "sessionId"})


def _given(model: type[BaseModel], arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments the caller really gave. A client's bookkeeping goes, and so does an optional
    argument sent as null or "": a strict-mode model (every property required) fills what it does not
    know that way. Unknown names stay, to be refused."""
    fields = model.model_fields
    if len(arguments) > MAX_ARGUMENTS:
        # Refused before pydantic reports each name: the answer and its cost stay small.
        unknown = [name for name in arguments if name not in fields and name not in BOOKKEEPING]
        raise ToolError(f"Invalid arguments: {unknown_names(unknown, model)}")
    kept = {}
    for name, value in arguments.items():
        if name in BOOKKEEPING:
            continue
        field = fields.get(name)
        blank = value is None or (isinstance(value, str) and not value.strip())
        if field is not None and blank and not field.is_required():
            continue
        kept[name] = value
    return kept


def reading_for(state: State, kind: type[CrmClient], wanted: object) -> Reading:
    """How the account a call will write to reads numbers and phones, known before its arguments are
    validated: the account its raw `wanted` target names, or the only one it may write to. When that
    is unclear (the arguments will be refused anyway), the strict reading."""
    try:
        allowed = state.allowed()
    except ToolError:
        return Reading()
    usable = state.usable(kind, allowed)
    if isinstance(wanted, str) and wanted.strip():
        usable = [c for c in usable if c.account.target == wanted.strip()]
    if len(usable) != 1:
        return Reading()
    account = usable[0].account
    return Reading(number_format(account.option("number_format")), account.option("default_country"))


def parse(model: type[M], arguments: dict[str, Any], reading: Reading | None = None) -> M:
    """The tool's arguments, validated, reading amounts and phones as the account does; a refusal
    names each argument and what is allowed."""
    try:
        return model.model_validate(_given(model, arguments), context=reading or Reading())
    except ValidationError as exc:
        raise ToolError(describe_validation(exc, model)) from None
