"""Writes left "unknown" settled later, by reading them back: when their idempotency key or their
duplicate is seen again, by `opportunity-mcp journal --reconcile`, and by a running server in the
background at a low pace.

A row becomes `done` (with the deal found, exactly one) or `failed` (the CRM was read whole, the write
is not there, and the settle time has passed since its call ended: a repeat may then send it). Several
candidates, or a CRM that cannot be read, leave it unknown. Nothing is ever sent from here, so a
reconciliation cannot make a second deal."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import anyio

from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.crm.result import WriteResult
from opportunity_mcp.journal import Finish, Row
from opportunity_mcp.tools.access import State
from opportunity_mcp.tools.answers import envelope
from opportunity_mcp.tools.lost_answer import MARGIN, seen_by
from opportunity_mcp.tools.read_back import Check, rebuilt

log = logging.getLogger(__name__)
Became = Literal["done", "absent", "several", "unknown", "unreadable"]
LATER = "the CRM's answer was lost; the write was confirmed later by reading it back"
PACE = 1.0  # seconds between two rows in the background: the CRM's rate limits belong to live calls


def _check(state: State, row: Row) -> Check | None:
    if row.intent is None:
        return None
    for client in state.clients:
        if client.account.target == row.account and (check := rebuilt(client, row.intent)) is not None:
            return check
    return None


def _ended(state: State, row: Row) -> float:
    """When the row's call ended at the latest: its latency when it finished, else its whole budget."""
    took = row.latency_ms / 1000 if row.latency_ms is not None else state.call_budget
    return row.at + took


async def reconcile(state: State, row: Row, policy: CallPolicy, *, wait: bool = False) -> Became:
    """Read one unknown write back and record what it became ('unreadable': nothing to read it by,
    a row from before writes kept their intent, or of an account no longer configured). With `wait`,
    a write not found before its settle time is over is looked for again once it is, if the budget
    allows (a live call that met it)."""
    check = _check(state, row)
    if check is None:
        return "unreadable"
    seen = await seen_by(check, policy, row.at)
    early = _ended(state, row) + state.settle - time.time()
    if seen is False and check.creates and wait and 0 < early <= policy.remaining() - MARGIN:
        await anyio.sleep(early)
        seen = await seen_by(check, policy, row.at)
    if isinstance(seen, WriteResult):
        env = envelope(seen, {}, (LATER,))
        done = Finish("done", 200, env.id, env.code, None, policy.requests, env.wire())
        if await state.journal.settle_unknown(row.id, done):
            log.info("journal row %s: unknown → done (read back: id %s)", row.id, env.id)
        return "done"
    late = check.creates and time.time() < _ended(state, row) + state.settle
    if seen is False and not late:
        if await state.journal.settle_unknown(row.id, Finish("failed", row.status, requests=policy.requests)):
            log.info("journal row %s: unknown → failed (read back: not in the CRM)", row.id)
        return "absent"
    return "several" if isinstance(seen, tuple) and seen else "unknown"


@dataclass
class Backoff:
    """When each row that stayed unknown is looked at again: 1, 2, 4 … up to 60 minutes apart."""

    next_at: dict[int, tuple[float, float]] = field(default_factory=dict)

    def due(self, row: Row) -> bool:
        return self.next_at.get(row.id, (0.0, 0.0))[0] <= time.time()

    def missed(self, row: Row, now: float) -> None:
        delay = min(3600.0, 2 * self.next_at.get(row.id, (0.0, 30.0))[1])
        self.next_at[row.id] = (now + delay, delay)


async def reconcile_rows(
    state: State,
    since: float,
    *,
    limit: int = 100,
    pace: float = 0.0,
    due: Callable[[Row], bool] = lambda row: True,
    each: Callable[[Row, Became], Awaitable[None]] | None = None,
) -> dict[Became, int]:
    """Every unknown row of the configured accounts since `since` (epoch seconds), oldest first: how
    many became what."""
    accounts = {c.account.target for c in state.clients}
    counts: dict[Became, int] = {}
    for row in await state.journal.unknown(since, accounts, limit):
        if not due(row):
            continue
        became = await reconcile(state, row, CallPolicy(budget=state.call_budget))
        counts[became] = counts.get(became, 0) + 1
        if each is not None:
            await each(row, became)
        await anyio.sleep(pace)
    return counts


async def in_background(state: State, every: float, hours: float = 24.0) -> None:
    """A running server's own unknown rows of the last `hours`, looked at every `every` seconds, one row
    a second, each row less often the longer it stays unknown. Runs until cancelled."""
    backoff = Backoff()

    async def after(row: Row, became: Became) -> None:
        if became in ("several", "unknown", "unreadable"):
            backoff.missed(row, time.time())

    while True:
        await anyio.sleep(every)
        try:
            await reconcile_rows(state, time.time() - hours * 3600, limit=20, pace=PACE, due=backoff.due, each=after)
        except Exception as exc:  # a journal or CRM away: tried again next round
            log.warning("reconciling unknown writes failed (%s); trying again in %g s", type(exc).__name__, every)
