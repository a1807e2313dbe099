"""What happens before a write is claimed: a dry run answers what would be sent; a write the account
wants confirmed waits for a person (`confirm`); a write confirmed with a code is keyed by it, so the
code confirms one write."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, InputRequiredResult

from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.tools.access import state_of
from opportunity_mcp.tools.confirm import Go, gate
from opportunity_mcp.tools.dry_run import dry_run

if TYPE_CHECKING:
    from opportunity_mcp.tools.write import Write


async def before(
    ctx: Context[Any, Any], write: Write, fp: str
) -> tuple[Write, Go] | CallToolResult | InputRequiredResult:
    """A dry run's answer, the question or preview a confirmation needs, or the write to go ahead with."""
    if getattr(write.args, "dryRun", False):
        return await _dry_run(ctx, write, fp)
    go = await _confirmed(ctx, write)
    if not isinstance(go, Go):
        return go
    if go.how == "confirmed with code":
        # A code confirms one write: used again, it is answered from the journal, not written again.
        write = dataclasses.replace(write, key=f"confirm:{getattr(write.args, 'confirmation', '')}")
    return write, go


async def _confirmed(ctx: Context[Any, Any], write: Write) -> Go | CallToolResult | InputRequiredResult:
    code = getattr(write.args, "confirmation", None)
    # What the code is bound to: everything sent, and whether a duplicate was asked for.
    payload = {**write.payload, **({"allowDuplicate": True} if getattr(write.args, "allowDuplicate", False) else {})}
    return await gate(
        ctx, tool=write.tool, account=write.account, payload=payload, facts=write.facts,
        describe=lambda: write.words, code=code,
    )  # fmt: skip


async def _dry_run(ctx: Context[Any, Any], write: Write, fp: str) -> CallToolResult:
    """The preview: the journal read (not claimed) for what a real call would be answered with, and
    the open-deal check run, as a real call would."""
    state = state_of(ctx)
    earlier = None
    if write.key is not None:
        earlier = await state.journal.by_key(write.tool, write.account.target, write.key)
    if earlier is None and write.guard is not None:
        earlier = await state.journal.same_recent(fp, state.duplicate_window)
    policy = write.policy or CallPolicy(budget=state.call_budget)
    notes = await write.precheck(policy) if write.precheck is not None else ()
    return await dry_run(
        ctx, account=write.account, words=write.words, payload=write.payload, facts=write.facts, earlier=earlier,
        notes=notes,
    )  # fmt: skip
