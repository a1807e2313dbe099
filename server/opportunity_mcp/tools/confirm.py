"""A person's confirmation before a write, when the account asks for it (`confirm_policy`), on every
client:

- a client that takes elicitation is asked, in words, with the payload resolved: on protocol
  2026-07-28 and later by an `InputRequiredResult` the client answers on its next round (any replica
  can take it), before that by an elicitation request in the middle of the call (where the transport
  can carry one: stdio; stateless HTTP cannot). Accept writes it; decline or cancel writes nothing;
- any other client gets a preview and a confirmation code: the same call again with that code writes
  it. The code is an HMAC, under a key derived from the account's own secret, of the tool, the
  account, the resolved payload and an expiry five minutes on: every replica can check it without
  shared state, and another payload, another account or an old code is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp.server.elicitation import AcceptedElicitation, render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import (
    CallToolResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    TextContent,
)
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from opportunity_mcp.confirm_policy import WriteFacts, parse_policy
from opportunity_mcp.crm.base import Account
from opportunity_mcp.summaries import bounded, money
from opportunity_mcp.tools.access import state_of
from opportunity_mcp.untrusted import quoted

CODE_SECONDS = 300
ASK = "confirm"  # the key of our question in an InputRequiredResult
ROUND_TRIP_ERA = "2026-07-28"  # from this protocol on, a call asks by returning InputRequiredResult


class ConfirmForm(BaseModel):
    write: bool = Field(default=True, description="Write this to the CRM")


@dataclass(frozen=True, slots=True)
class Go:
    """The write may go ahead; `how` says how a person confirmed it (None: no confirmation needed)."""

    how: str | None = None


def _key(account: Account) -> bytes:
    secret = account.secret.get_secret_value().encode()
    return hashlib.sha256(b"opportunity-mcp/confirm\0" + secret).digest()


def _mac(account: Account, tool: str, payload: Mapping[str, Any], expires: int) -> str:
    body = json.dumps([tool, account.family, account.target, expires, payload], sort_keys=True, default=str)
    digest = hmac.new(_key(account), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def mint(account: Account, tool: str, payload: Mapping[str, Any], now: float | None = None) -> str:
    """A code good for this payload on this account for five minutes."""
    expires = int((now or time.time()) + CODE_SECONDS)
    return f"c1.{expires}.{_mac(account, tool, payload, expires)}"


def valid(account: Account, tool: str, payload: Mapping[str, Any], code: str, now: float | None = None) -> bool:
    """Whether `code` was minted for exactly this payload on this account and is not expired."""
    version, _, rest = code.partition(".")
    stamp, _, mac = rest.partition(".")
    if version != "c1" or not stamp.isdigit() or len(stamp) > 12:
        return False
    expires, current = int(stamp), now or time.time()
    if not current <= expires <= current + CODE_SECONDS + 1:
        return False
    return hmac.compare_digest(mac.encode(), _mac(account, tool, payload, expires).encode())


def described(verb: str, payload: Mapping[str, Any], resolved: Mapping[str, str], where: str) -> str:
    """The write in words: "create 'Plan anual' for 1,200.00, stage 'Propuesta', contact 'Maria
    Lopez (+51…)', assigned to 'juan@acme.com' in workspace ws-1"; names quoted (they are data)."""
    amount = payload.get("amount", payload.get("monetaryValue"))
    field = payload.get("field")
    said = {
        "stage": resolved.get("stage") or payload.get("stageId") or payload.get("pipelineStageId"),
        "contact": resolved.get("contact") or payload.get("contactId"),
        "assigned to": resolved.get("seller") or payload.get("assignedComercialId") or payload.get("assignedTo"),
    }
    head = " ".join(
        p
        for p in (
            quoted(str(payload["name"])) if payload.get("name") else None,
            f"for {money(float(amount))}" if isinstance(amount, int | float) else None,
        )
        if p
    )
    parts = [
        head or None,
        f"status {payload['status']}" if payload.get("status") else None,
        *(f"{label} {quoted(str(value))}" for label, value in said.items() if value),
        f"custom fields {resolved['custom fields']}" if "custom fields" in resolved else None,
    ]
    if field is not None:  # one field of a deal
        shown = resolved.get({"stageId": "stage", "assignedAgentId": "seller"}.get(str(field), ""))
        value = quoted(shown or str(payload.get("value")))
        parts = [f"set {payload.get('customFieldName') or field} to {value} on deal {payload.get('opportunityId')}"]
    deal = f" deal {payload['id']}" if payload.get("id") else ""
    return bounded(f"{verb}{deal} " + ", ".join(p for p in parts if p) + f" in {where}", 400)


def waits_for(account: Account, facts: WriteFacts) -> str | None:
    """Why the account's `confirm` rules make this write wait for a person, in words; None if not."""
    rule = account.option("confirm")
    return parse_policy(rule).reason(facts) if rule else None


async def gate(
    ctx: Context[Any, Any],
    *,
    tool: str,
    account: Account,
    payload: Mapping[str, Any],
    facts: WriteFacts,
    describe: Callable[[], str],
    code: str | None,
) -> Go | CallToolResult | InputRequiredResult:
    """Go, or what to answer instead of writing: a question for the client, or a preview with a code.
    The write is put in words (`describe`) only when a person is to see it."""
    why = waits_for(account, facts)
    if why is None:
        return Go()
    words = describe()
    if code is not None:
        if not valid(account, tool, payload, code):
            raise ToolError(
                "Not confirmed: the confirmation code does not match this write (another value or account) or "
                "is older than 5 minutes. Nothing was written; call again without it for a new preview."
            )
        return Go("confirmed with code")
    question = f"Confirm: {words}? ({why})"
    caps = ctx.client_capabilities
    asks = caps is not None and caps.elicitation is not None
    if asks and is_version_at_least(ctx.protocol_version or "", ROUND_TRIP_ERA):
        return _round_trip(ctx, account, tool, payload, question)
    if asks and state_of(ctx).mid_call_requests:
        answer = await ctx.elicit(question, ConfirmForm)
        return _answered(isinstance(answer, AcceptedElicitation) and answer.data.write)
    return _preview(mint(account, tool, payload), words, why)


def _round_trip(
    ctx: Context[Any, Any], account: Account, tool: str, payload: Mapping[str, Any], question: str
) -> Go | InputRequiredResult:
    """Ask by returning the question; the client's next round carries the answer, and our code as its
    state (sealed by the SDK, and checked here against the payload resolved again)."""
    answer = (ctx.input_responses or {}).get(ASK)
    state = ctx.request_state
    if answer is None or state is None:
        form = render_elicitation_schema(ConfirmForm)  # the same form the mid-call question asks
        ask = ElicitRequest(params=ElicitRequestFormParams(message=question, requested_schema=form))
        return InputRequiredResult(input_requests={ASK: ask}, request_state=mint(account, tool, payload))
    if not valid(account, tool, payload, state):
        raise ToolError(
            "Not confirmed: the write changed since it was shown for confirmation, or the confirmation is "
            "older than 5 minutes. Nothing was written; call again to be asked anew."
        )
    if not isinstance(answer, ElicitResult):
        return _answered(False)
    content = answer.content if isinstance(answer.content, dict) else {}
    return _answered(answer.action == "accept" and content.get("write", True) is not False)


def _answered(accepted: bool) -> Go:
    if not accepted:
        raise ToolError("Not written: the person did not confirm it (declined or cancelled). Nothing was sent.")
    return Go("confirmed by the user")


def _preview(code: str, words: str, why: str) -> CallToolResult:
    because = f" ({why})" if why else ""
    text = bounded(
        f"Not written yet: this account asks a person to confirm{because}. Would {words}. Show this to the person; "
        f'once they agree, call again with the same arguments and confirmation: "{code}" (valid 5 minutes).',
        800,
    )
    structured = {"ok": False, "confirmation": code, "preview": words, "warnings": []}
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)
