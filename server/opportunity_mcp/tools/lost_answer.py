"""A write whose answer was lost (the CRM may or may not have applied it) is looked for before anyone
is told "unknown": found exactly once, it is confirmed; surely absent, it is sent once more, so the
call still ends with one deal; otherwise the outcome stays unknown, with the candidates named.

A create still on its way inside the CRM must not be doubled, so "absent" counts only once the
settle time has passed since its answer was lost, and a create is sent again at most once."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio
from mcp.server.mcpserver.exceptions import ToolError

from opportunity_mcp.crm.errors import CrmError
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.crm.result import WriteResult
from opportunity_mcp.tools.read_back import Check, Seen

log = logging.getLogger(__name__)
CONFIRMED = "the CRM's answer was lost; the write was confirmed by reading it back"
SENT_AGAIN = "the CRM's answer was lost and the CRM did not have the write {s:g} s later, so it was sent once more"
RESENT_CHANGE = "the CRM's answer was lost and the deal did not show the change, so it was sent once more"
MARGIN = 1.0  # seconds a write sent again needs at least


async def seen_by(check: Check, policy: CallPolicy, since: float) -> Seen:
    """What the CRM shows of the write; None when it cannot be read (the reason is logged)."""
    try:
        return await check.look(policy, since)
    except (CrmError, ToolError) as unread:
        reason = unread.message if isinstance(unread, CrmError) else type(unread).__name__
        log.warning("reading a write back failed: %s", reason)
        return None


async def _still_absent(
    check: Check, policy: CallPolicy, started: float, lost: CrmError, waited: float, settle: float
) -> Seen:
    """A create not found: found absent again once the settle time is over (False), or None when that
    cannot be told in time, or when the CRM may still be working on it (a time-out)."""
    if _maybe_working(lost):
        return None  # looked for, never sent again now: the reconciler looks later
    wait = max(0.0, settle - waited)
    if policy.remaining() < wait + MARGIN:
        return None  # no time left to tell absent from late
    await anyio.sleep(wait)
    return await seen_by(check, policy, started)


def _maybe_working(err: CrmError) -> bool:
    """A time-out or a gateway's time-out: the CRM may still be writing it, longer than any settle time."""
    return bool(getattr(err, "slow", False)) or err.status == 504


def noted(result: WriteResult, note: str) -> WriteResult:
    return WriteResult(result.opportunity, result.created, result.account, (note, *result.warnings))


async def sent_or_read_back(
    send: Callable[[CallPolicy], Awaitable[WriteResult]], check: Check | None, policy: CallPolicy, settle: float
) -> WriteResult:
    """The write's result: as answered, confirmed by reading it back, or as answered when sent once more."""
    started = time.time()
    try:
        return await send(policy)
    except CrmError as err:
        if err.outcome_known or check is None:
            raise
        lost = err
    lost_at = time.monotonic()
    seen = await seen_by(check, policy, started)
    if seen is False and check.creates:
        seen = await _still_absent(check, policy, started, lost, time.monotonic() - lost_at, settle)
    if seen is False and policy.remaining() >= MARGIN:
        try:
            return noted(await send(policy), SENT_AGAIN.format(s=settle) if check.creates else RESENT_CHANGE)
        except CrmError as again:
            if again.outcome_known:
                raise
            lost = again
        seen = await seen_by(check, policy, started)  # its answer lost too: looked for, never sent a third time
    if isinstance(seen, WriteResult):
        return noted(seen, CONFIRMED)
    if isinstance(seen, tuple) and seen:
        lost.message += f"; {len(seen)} deals could be it: {'; '.join(seen)}"
    raise lost
