"""`dryRun: true` on a write: every name, phone and email resolved, the duplicate guard and the
open-deal check run, and the answer says exactly what would be sent. Nothing is written and no
journal row is claimed; the only requests are the reads a real call would make first."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent

from opportunity_mcp.confirm_policy import WriteFacts
from opportunity_mcp.crm.base import Account
from opportunity_mcp.journal import Row
from opportunity_mcp.summaries import bounded
from opportunity_mcp.tools.access import state_of
from opportunity_mcp.tools.confirm import waits_for
from opportunity_mcp.untrusted import clean


async def dry_run(
    ctx: Context[Any, Any],
    *,
    account: Account,
    words: str,
    payload: Mapping[str, Any],
    facts: WriteFacts,
    earlier: Row | None,
    notes: tuple[str, ...],
) -> CallToolResult:
    """The preview of a write; `earlier` is the journal's answer it would get instead (a key or an
    identical create seen before), `notes` what the checks said."""
    said = list(notes)
    if earlier is not None and earlier.outcome in ("done", "unknown", "pending"):
        ago = f"{max(0, round(time.time() - earlier.at))} s ago"
        what = f"opportunity {clean(earlier.opportunity_id)}" if earlier.opportunity_id else "a write"
        said.insert(0, f"the same write was seen {ago} ({earlier.outcome}, {what}): a real call would send nothing")
    why = waits_for(account, facts)
    if why is not None:
        said.append(f"a real call would ask a person to confirm it ({why})")
    text = f"Dry run, nothing written: would {words}." + "".join(f" Note: {clean(n, 200)}" for n in said)
    structured = {
        "ok": True,
        "dryRun": True,
        "account": account.target,
        "request": dict(payload),
        "warnings": said,
    }
    text = state_of(ctx).scrub(bounded(text, 800))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)
