"""The write path every tool shares: claim the write in the journal, send it, record the outcome,
and answer; a repeat is answered from the journal without calling the CRM.

Every write is claimed before its HTTP call and finished after it (under a cancel shield, so a client
gone or a shutdown still records how it ended). Every text leaving a tool passes `State.scrub`, a last
line of defence that no configured secret can reach the agent.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import BaseModel

from opportunity_mcp.confirm_policy import WriteFacts
from opportunity_mcp.crm.base import Account
from opportunity_mcp.crm.errors import CrmError
from opportunity_mcp.crm.families import FAMILIES
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.crm.result import WriteResult
from opportunity_mcp.envelope import Envelope
from opportunity_mcp.journal import Claim, Finish, JournalUnavailable, Row, fingerprint
from opportunity_mcp.models import HUMAN_ARGUMENTS
from opportunity_mcp.summaries import WriteKind, failure_text
from opportunity_mcp.tools.access import State, state_of
from opportunity_mcp.tools.answers import answer, envelope
from opportunity_mcp.tools.before_write import before
from opportunity_mcp.tools.confirm import described
from opportunity_mcp.tools.lost_answer import sent_or_read_back
from opportunity_mcp.tools.read_back import Check
from opportunity_mcp.tools.reconcile import reconcile

log = logging.getLogger(__name__)


def call_policy(ctx: Context[Any, Any]) -> CallPolicy:
    """A call's budget and bookkeeping, from its first request (a lookup or the write) on."""
    return CallPolicy(budget=state_of(ctx).call_budget, on_wait=_progress(ctx))


def _progress(ctx: Context[Any, Any]) -> Callable[[float, str], Awaitable[None]]:
    waits = 0

    async def notice(delay: float, reason: str) -> None:
        nonlocal waits
        waits += 1
        await ctx.report_progress(waits, None, f"{reason}; waiting {delay:.1f} s")

    return notice


# Arguments about the call, not the deal: not part of what makes two calls 'the same arguments'.
# The human arguments (a phone, a name) are resolved to ids before the write and then left empty:
# leaving them out keeps fingerprints equal to those of rows written before they existed.
_NOT_ARGS = frozenset({"idempotencyKey", "allowDuplicate", "dryRun", "confirmation"}) | HUMAN_ARGUMENTS


FINISH_PATIENCE = 8.0  # seconds a finished write waits for its journal to come back
_NOT_SENT = (
    "Nothing was sent to the CRM, since a write that cannot be recorded could be doubled by a retry. "
    "Try the same call again in about 30 s; the server recovers by itself once its journal is back."
)


@dataclass(frozen=True, slots=True)
class Write:
    """One write a tool asks for: what to journal it as, and how to send it."""

    tool: str
    account: Account
    args: BaseModel  # the validated arguments: their fingerprint tells a repeated key's changes
    key: str | None  # the idempotency key
    guard: dict[str, Any] | None  # what makes two creates 'the same deal'; None: no duplicate guard
    kind: WriteKind
    send: Callable[[CallPolicy], Awaitable[WriteResult]]
    field: str | None = None  # the field an update changed, for the sentence
    policy: CallPolicy | None = None  # the call's policy, when lookups already spent part of it
    resolved: Mapping[str, str] = dataclasses.field(default_factory=dict)  # names and phones, in words
    # Checked once the write is claimed (a repeat is answered before it): its notes join the answer's
    # warnings; a ToolError from it refuses the write, which is then recorded as failed, nothing sent.
    precheck: Callable[[CallPolicy], Awaitable[tuple[str, ...]]] | None = None
    # How the write is read back when its answer is lost (`lost_answer`); kept with its journal row.
    check: Check | None = None
    # What is sent, resolved (ids, CRM field names): shown by a dry run and a confirmation, and what a
    # confirmation code is bound to; `facts` is what the account's confirmation rules look at.
    payload: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    facts: WriteFacts = dataclasses.field(default_factory=WriteFacts)
    verb: str = "write"  # "create", "update": how a preview says it

    @property
    def words(self) -> str:
        account = self.account
        where = f"{FAMILIES[account.family].target_kind} {account.target}"
        return described(self.verb, self.payload, self.resolved, where)


async def journaled(ctx: Context[Any, Any], write: Write) -> CallToolResult | InputRequiredResult:
    """Claim the write in the journal, send it, record the outcome; answer a repeat from the journal.
    A dry run only says what would be sent; a write the account wants confirmed waits for it."""
    state = state_of(ctx)
    target = write.account.target
    args_fp = fingerprint(write.tool, target, {k: v for k, v in vars(write.args).items() if k not in _NOT_ARGS})
    fp = fingerprint(write.tool, target, write.guard or {})
    ready = await before(ctx, write, fp)
    if not isinstance(ready, tuple):
        return ready
    write, go = ready
    claim_once = functools.partial(
        state.journal.claim,
        tool=write.tool,
        account=target,
        fp=fp,
        args_fp=args_fp,
        key=write.key,
        guard=write.guard is not None,
        window=state.duplicate_window,
        stale=state.call_budget + 60,  # no call of a live process is pending longer
        intent=write.check.intent_json() if write.check is not None else None,
    )
    try:
        claim = await _claim_when_free(ctx, state, claim_once)
        if claim.row_id is None and claim.earlier is not None and claim.earlier.outcome == "unknown":
            # Its key or its duplicate left unknown: read back first; absent, this call may send it.
            earlier = await _reconciled(state, claim.earlier)
            claim = await claim_once() if earlier is None else dataclasses.replace(claim, earlier=earlier)
    except JournalUnavailable as err:
        # Fail closed: a write the journal cannot record is not sent (a retry could double it).
        log.error("%s %s not sent: %s", write.tool, target, err)
        raise ToolError(state.scrub(f"Not sent: {err}. {_NOT_SENT}")) from None
    if claim.row_id is None:
        return _repeat(state, claim, args_fp)
    policy = write.policy or call_policy(ctx)
    notes: tuple[str, ...] = ()
    if write.precheck is not None:
        try:
            notes = await write.precheck(policy)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _finish(state, claim.row_id, Finish("failed", requests=policy.requests))
            raise
    started = time.monotonic()
    # Anything that ends the call without an answer (a crash) leaves "unknown".
    outcome, status, env, wire = "unknown", None, None, None
    try:
        # Once claimed, the write runs to its end even if the client goes away (a time-out, a dropped
        # stream): its outcome is journaled, so the client's re-send gets this result rather than an
        # unknown one. The call's budget still bounds it.
        with anyio.CancelScope(shield=True):
            result = await sent_or_read_back(write.send, write.check, policy, state.settle)
        env = envelope(result, write.resolved, (*notes, *((go.how,) if go.how else ())))
        if go.how:
            env.confirmed = go.how
        wire = env.wire()  # once, for the answer and the journal row
        outcome = "done"
        return answer(state, env, write.field, wire)
    except CrmError as err:
        outcome, status = ("failed" if err.outcome_known else "unknown"), err.status
        text = failure_text(err, kind=write.kind, secret_source=write.account.secret_source)
        raise ToolError(state.scrub(text)) from None
    finally:
        # Shielded: a cancelled call (a client gone, a shutdown) still records how it ended. A journal
        # that fails here is logged, never turned into an error for a write the CRM accepted.
        with anyio.CancelScope(shield=True):
            try:
                ended = Finish(
                    outcome,  # type: ignore[arg-type]
                    status if env is None else 200,
                    env.id if env else None,
                    env.code if env else None,
                    round((time.monotonic() - started) * 1000),
                    policy.requests,
                    wire,
                )
                await _finish(state, claim.row_id, ended)
            except Exception as exc:  # the answer stands; the row is taken as unknown once stale
                log.error("could not finish journal row %s as %s: %s", claim.row_id, outcome, type(exc).__name__)


async def _finish(state: State, row_id: int, ended: Finish) -> None:
    """Record the outcome; a journal that is briefly away (a database restart) gets a few seconds to
    come back, so that a write the CRM took is not left pending. Bounded, so that a shutdown is not
    held up by a journal that is gone for good."""
    with anyio.move_on_after(FINISH_PATIENCE):
        for delay in (0.5, 1.0, 2.0):
            try:
                await state.journal.finish(row_id, ended)
                return
            except Exception as exc:
                log.warning("journal row %s not finished yet (%s); trying again", row_id, type(exc).__name__)
                await anyio.sleep(delay)
        await state.journal.finish(row_id, ended)
        return
    raise TimeoutError(f"the journal did not come back within {FINISH_PATIENCE:g} s")


async def _claim_when_free(ctx: Context[Any, Any], state: State, claim_once: Callable[[], Awaitable[Claim]]) -> Claim:
    """Claim the write; while the same write is in flight (another call, maybe on another replica),
    wait for it to finish and answer from it, rather than refuse. Bounded by the call budget: the
    write in flight is bounded by it too."""
    deadline = time.monotonic() + state.call_budget
    delay, told = 0.02, False
    while True:
        claim = await claim_once()
        pending = claim.row_id is None and (claim.earlier is None or claim.earlier.outcome == "pending")
        if not pending or time.monotonic() + delay > deadline:
            return claim
        if not told:
            told = True
            await ctx.report_progress(0, None, "the same write is in progress; waiting for its answer")
        await anyio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def answered_before(
    ctx: Context[Any, Any], tool: str, account: Account, key: str | None, args: BaseModel, *, comparable: bool = True
) -> CallToolResult | None:
    """A call whose idempotency key the journal already knows as done or unknown, answered from the
    journal before any lookup, so a repeat costs no request and needs no CRM that is up."""
    if key is None or getattr(args, "dryRun", False):  # a dry run says what a repeat would get instead
        return None
    state = state_of(ctx)
    try:
        earlier = await state.journal.by_key(tool, account.target, key)
    except Exception:  # the claim that follows says what is wrong with the journal
        return None
    if earlier is not None and earlier.outcome == "unknown":
        earlier = await _reconciled(state, earlier)
    if earlier is None or earlier.outcome not in ("done", "unknown"):
        return None
    given = fingerprint(tool, account.target, {k: v for k, v in vars(args).items() if k not in _NOT_ARGS})
    # With names or phones, the arguments the first call stored (as ids) cannot be compared yet.
    comparable = comparable and not any(getattr(args, name, None) is not None for name in HUMAN_ARGUMENTS)
    return _repeat(state, Claim(None, earlier, "key"), given if comparable else None)


async def _reconciled(state: State, row: Row) -> Row | None:
    """An unknown row read back before a repeat is answered from it: the row as it now is (done, or
    still unknown), or None when the write is surely not in the CRM (the repeat may then send it)."""
    try:
        became = await reconcile(state, row, CallPolicy(budget=state.call_budget / 2), wait=True)
        if became == "absent":
            return None
        return (await state.journal.row(row.id) or row) if became == "done" else row
    except Exception as exc:  # the repeat is answered from what is known
        log.warning("reading back journal row %s failed (%s)", row.id, type(exc).__name__)
        return row


def _repeat(state: State, claim: Claim, args_fp: str | None) -> CallToolResult:
    """Answer a call the journal has seen before, without calling the CRM."""
    earlier = claim.earlier
    if earlier is None or earlier.outcome == "pending":
        raise ToolError("The same write is still in progress; check journal://recent or the CRM before calling again.")
    ago = f"{max(0, round(time.time() - earlier.at))} s ago"
    if earlier.outcome == "done" and earlier.envelope is not None:
        env = Envelope.model_validate(earlier.envelope)
        if claim.reason == "key":
            note = f"this idempotencyKey was used {ago}; this is that call's result and nothing was sent"
            if args_fp is None:
                note += "; if this call's arguments differ, they were NOT applied"
            elif earlier.args_fp != args_fp:
                note += "; the new arguments differ and were NOT applied"
        else:
            note = (
                f"an identical opportunity was created {ago}; nothing new was created (allowDuplicate: true forces one)"
            )
            if earlier.args_fp != args_fp:
                note += "; this call's other values were NOT applied (use an update)"
        # How that call's outcome was learned stays said (a write confirmed by reading it back).
        kept = [w for w in env.warnings or () if "answer was lost" in w]
        env = env.model_copy(update={"action": "already_done", "warnings": [note, *kept]})
        return answer(state, env)
    if claim.reason == "key":
        raise ToolError(
            f"The call with this idempotencyKey {ago} has an unknown outcome: the opportunity may or may not exist. "
            "Check the CRM before doing anything else; use a new key only once you know it does not exist."
        )
    raise ToolError(
        f"An identical create {ago} has an unknown outcome: the opportunity may already exist. Check the CRM; "
        "pass allowDuplicate: true only if you are sure it does not."
    )
