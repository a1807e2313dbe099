"""The three tools. Each is thin: validate the arguments, call the CRM, shape the envelope.

A tool receives the raw arguments and validates them itself (`parse`), so a refusal names the
argument and what is allowed, in one line, without echoing the input back. Every write goes through
the journal (`_journaled`): claimed before the HTTP call, finished after it, and answered from the
journal when it repeats an earlier one. Every text leaving a tool passes `State.scrub`, a last line
of defence that no configured secret can reach the agent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, ValidationError

from server.crm.errors import CrmError
from server.crm.leadconnector import LeadConnectorClient
from server.crm.plazbot import PlazbotClient
from server.crm.policy import CallPolicy
from server.crm.result import WriteResult
from server.journal import Claim, Journal, fingerprint
from server.models import (
    CreateOpportunityArgs,
    Envelope,
    UpdateOpportunityFieldArgs,
    UpsertOpportunityArgs,
    describe_validation,
)
from server.summaries import WriteKind, failure_text, success_text

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
Crm = Literal["plazbot", "leadconnector"]


@dataclass(frozen=True, slots=True)
class State:
    """What the lifespan holds for the tools: one client per configured account, and the journal.

    `open_access` is true on stdio and with --no-auth: every configured account may be written to.
    Otherwise the caller's bearer token names the accounts it may write to."""

    plazbot: tuple[PlazbotClient, ...]
    leadconnector: tuple[LeadConnectorClient, ...]
    journal: Journal
    secrets: tuple[str, ...] = ()
    call_budget: float = 20.0
    duplicate_window: float = 600.0
    open_access: bool = True

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def allowed(self) -> frozenset[str] | None:
        """The account names this call may write to; None for all of them."""
        if self.open_access:
            return None
        token = get_access_token()
        if token is None:  # the HTTP layer lets no call through without a token; fail closed anyway
            raise ToolError("Not authenticated: send the bearer token this server gave you.")
        return None if "*" in token.scopes else frozenset(token.scopes)


C = TypeVar("C", PlazbotClient, LeadConnectorClient)


def _pick(state: State, clients: tuple[C, ...], wanted: str | None, field: str) -> C:
    """The client for the account a call names (`wanted`), or the only one it may write to.

    Nothing is sent when the account is not one the caller may write to, and a caller that may write
    to several must say which: a bot fleet's writes never land in a workspace by default."""
    allowed = state.allowed()
    usable = [c for c in clients if allowed is None or c.account.name in allowed]
    kind = "workspace" if field == "workspaceId" else "location"
    if not usable:
        raise ToolError(f"Not allowed: this connection may not write to any {kind} of this CRM.")
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
        f"Not allowed: {field}: not a {kind} this connection may write to (allowed: {choices}); nothing was sent."
    )


def parse(model: type[M], arguments: dict[str, Any]) -> M:
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        raise ToolError(describe_validation(exc, model)) from None


def _state(ctx: Context[Any, Any]) -> State:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, State)
    return state


def _envelope(result: WriteResult) -> Envelope:
    opp = result.opportunity
    return Envelope(
        ok=True,
        action="created" if result.created else "updated",
        account=result.account,
        id=opp.id,
        code=opp.code,
        name=opp.name,
        amount=opp.amount,
        stage=opp.stage,
        status=opp.status,
        contact=opp.contact,
        assignee=opp.assignee,
        warnings=list(result.warnings),
    )


def _answer(state: State, env: Envelope, field: str | None = None) -> CallToolResult:
    text = state.scrub(success_text(env, field=field))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=env.wire())


def _progress(ctx: Context[Any, Any]) -> Callable[[float, str], Awaitable[None]]:
    waits = 0

    async def notice(delay: float, reason: str) -> None:
        nonlocal waits
        waits += 1
        await ctx.report_progress(waits, None, f"{reason}; waiting {delay:.1f} s")

    return notice


def _args_fp(tool: str, account: str, args: BaseModel) -> str:
    return fingerprint(tool, account, args.model_dump(exclude={"idempotencyKey", "allowDuplicate"}))


async def _journaled(
    ctx: Context[Any, Any],
    *,
    tool: str,
    account: str,
    args: BaseModel,
    key: str | None,
    guard: dict[str, Any] | None,
    kind: WriteKind,
    crm: Crm,
    write: Callable[[CallPolicy], Awaitable[WriteResult]],
    field: str | None = None,
) -> CallToolResult:
    """Claim the write in the journal, send it, record the outcome; answer a repeat from the journal."""
    state = _state(ctx)
    args_fp = _args_fp(tool, account, args)
    claim = await _claim_when_free(
        ctx,
        state,
        tool=tool,
        account=account,
        fp=fingerprint(tool, account, guard or {}),
        args_fp=args_fp,
        key=key,
        guard=guard is not None,
    )
    if claim.row_id is None:
        return _repeat(state, claim, args_fp)
    policy = CallPolicy(budget=state.call_budget, on_wait=_progress(ctx))
    started = time.monotonic()
    # Anything that ends the call without an answer (a crash, a cancellation) leaves "unknown".
    outcome, status, env = "unknown", None, None
    try:
        result = await write(policy)
        env = _envelope(result)
        outcome = "done"
        return _answer(state, env, field)
    except CrmError as err:
        outcome, status = ("failed" if err.outcome_known else "unknown"), err.status
        raise ToolError(state.scrub(failure_text(err, kind=kind, crm=crm))) from None
    finally:
        # Shielded: a cancelled call (a client gone, a shutdown) still records how it ended. A journal
        # that fails here is logged, never turned into an error for a write the CRM accepted.
        with anyio.CancelScope(shield=True):
            try:
                await state.journal.finish(
                    claim.row_id,
                    outcome,  # type: ignore[arg-type]
                    status=status if env is None else 200,
                    opportunity_id=env.id if env else None,
                    code=env.code if env else None,
                    latency_ms=round((time.monotonic() - started) * 1000),
                    requests=policy.requests,
                    envelope=env.wire() if env else None,
                )
            except Exception as exc:  # the answer stands; the row is taken as unknown once stale
                log.error("could not finish journal row %s as %s: %s", claim.row_id, outcome, type(exc).__name__)


async def _claim_when_free(
    ctx: Context[Any, Any],
    state: State,
    *,
    tool: str,
    account: str,
    fp: str,
    args_fp: str,
    key: str | None,
    guard: bool,
) -> Claim:
    """Claim the write; while the same write is in flight (another call, maybe on another replica),
    wait for it to finish and answer from it, rather than refuse. Bounded by the call budget: the
    write in flight is bounded by it too."""
    deadline = time.monotonic() + state.call_budget
    delay, told = 0.02, False
    while True:
        claim = await state.journal.claim(
            tool=tool,
            account=account,
            fp=fp,
            args_fp=args_fp,
            key=key,
            guard=guard,
            window=state.duplicate_window,
            stale=state.call_budget + 60,  # no call of a live process is pending longer
        )
        pending = claim.row_id is None and (claim.earlier is None or claim.earlier.outcome == "pending")
        if not pending or time.monotonic() + delay > deadline:
            return claim
        if not told:
            told = True
            await ctx.report_progress(0, None, "the same write is in progress; waiting for its answer")
        await anyio.sleep(delay)
        delay = min(delay * 2, 0.5)


def _repeat(state: State, claim: Claim, args_fp: str) -> CallToolResult:
    """Answer a call the journal has seen before, without calling the CRM."""
    earlier = claim.earlier
    if earlier is None or earlier.outcome == "pending":
        raise ToolError("The same write is still in progress; check journal://recent or the CRM before calling again.")
    ago = f"{max(0, round(time.time() - earlier.at))} s ago"
    if earlier.outcome == "done" and earlier.envelope is not None:
        env = Envelope.model_validate(earlier.envelope)
        if claim.reason == "key":
            note = f"this idempotencyKey was used {ago}; this is that call's result and nothing was sent"
            if earlier.args_fp != args_fp:
                note += "; the new arguments differ and were NOT applied"
        else:
            note = (
                f"an identical opportunity was created {ago}; nothing new was created (allowDuplicate: true forces one)"
            )
            if earlier.args_fp != args_fp:
                note += "; this call's other values were NOT applied (use an update)"
        env = env.model_copy(update={"action": "already_done", "warnings": [note]})
        return _answer(state, env)
    if claim.reason == "key":
        raise ToolError(
            f"The call with this idempotencyKey {ago} has an unknown outcome: the opportunity may or may not exist. "
            "Check the CRM before doing anything else; use a new key only once you know it does not exist."
        )
    raise ToolError(
        f"An identical create {ago} has an unknown outcome: the opportunity may already exist. Check the CRM; "
        "pass allowDuplicate: true only if you are sure it does not."
    )


async def create_opportunity(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Create a Plazbot/Wabotify opportunity (deal). Use ids from lookups, never invented ones."""
    args = parse(CreateOpportunityArgs, arguments)
    client = _pick(_state(ctx), _state(ctx).plazbot, args.workspaceId, "workspaceId")
    account = client.account.workspace_id
    guard = (
        None
        if args.allowDuplicate
        else {
            "name": args.name,
            "contactId": args.contactId,
            "amount": args.amount,
            "description": args.description,
        }
    )
    return await _journaled(
        ctx,
        tool="create_opportunity",
        account=account,
        args=args,
        key=args.idempotencyKey,
        guard=guard,
        kind="create",
        crm="plazbot",
        write=lambda policy: client.create(args, policy),
    )


async def update_opportunity_field(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Change one field of a Plazbot/Wabotify opportunity; for a custom field use customFields
    and customFieldName."""
    args = parse(UpdateOpportunityFieldArgs, arguments)
    if args.field == "customFields" and not args.customFieldName:
        raise ToolError("Invalid arguments: customFieldName: required when field is customFields")
    if args.field != "customFields" and args.customFieldName:
        raise ToolError("Invalid arguments: customFieldName: only allowed when field is customFields")
    try:
        value = args.checked_value()
    except ValueError as exc:
        raise ToolError(f"Invalid arguments: {exc}") from None
    client = _pick(_state(ctx), _state(ctx).plazbot, args.workspaceId, "workspaceId")
    return await _journaled(
        ctx,
        tool="update_opportunity_field",
        account=client.account.workspace_id,
        args=args,
        key=None,
        guard=None,
        kind="update",
        crm="plazbot",
        write=lambda policy: client.update_field(args, value, policy),
        field=args.customFieldName if args.field == "customFields" else args.field,
    )


async def upsert_opportunity(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult:
    """Create (without id) or update (with id) a LeadConnector opportunity: HighLevel, Leadway."""
    args = parse(UpsertOpportunityArgs, arguments)
    if args.id is None and args.name is None:
        raise ToolError("Invalid arguments: name: required when id is not given (a new opportunity needs a name)")
    client = _pick(_state(ctx), _state(ctx).leadconnector, args.locationId, "locationId")
    # With an id and no pipelineId, the client reads the deal's own pipeline instead of moving it.
    pipeline = args.pipelineId or (None if args.id else client.account.pipeline_id)
    if pipeline is None and args.id is None:
        raise ToolError(
            "Invalid arguments: pipelineId: required, since this location has no default pipeline configured"
        )
    location = client.account.location_id
    # Only an exact repeat of a create-or-match is a duplicate: a changed status or stage is a new write.
    guard = (
        None
        if args.id is not None or args.allowDuplicate
        else {**args.model_dump(exclude={"idempotencyKey", "allowDuplicate"}), "pipelineId": pipeline}
    )
    return await _journaled(
        ctx,
        tool="upsert_opportunity",
        account=location,
        args=args,
        key=args.idempotencyKey,
        guard=guard,
        kind="upsert-id" if args.id else "upsert-new",
        crm="leadconnector",
        write=lambda policy: client.upsert(args, location=location, pipeline=pipeline, policy=policy),
    )
