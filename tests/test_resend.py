"""A re-send never doubles a write. A client gives up after 1 s while the CRM takes 3 s, then sends the
same call again (new JSON-RPC id, new connection), as the Agents SDK's 5 s time-out and clients of the
2026-07-28 protocol do: it gets the first call's result. With a key, and without one (the duplicate
guard), over real HTTP, in both protocol eras."""

from __future__ import annotations

import re
from typing import Any

import anyio
import httpx2
import pytest

from tests.conftest import authorized_client, bearer, http_server, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}


@pytest.mark.parametrize(
    ("mode", "answers"), [("legacy", "--sse"), ("2026-07-28", "--sse"), ("legacy", "json"), ("2026-07-28", "json")]
)
@pytest.mark.parametrize("key", ["wamid.resend-1", None])
async def test_a_resend_after_a_client_timeout_gets_the_first_result(mode: str, answers: str, key: str | None) -> None:
    arguments: dict[str, Any] = {**DEAL, **({"idempotencyKey": key} if key else {})}
    flags = ("--sandbox", *([answers] if answers == "--sse" else []))
    with http_server(*flags) as (base, banner):
        found = re.search(r"the sandbox CRM at (http://127\.0\.0\.1:\d+)", banner)
        assert found
        crm = found.group(1)
        fault = {"route": "plazbot.create", "delay": 3.0}
        assert httpx2.post(f"{crm}/_sandbox/faults", json=fault, timeout=10).status_code == 200
        async with authorized_client(f"{base}/mcp", bearer(banner), mode) as impatient:
            with anyio.move_on_after(1.0) as gave_up:
                await impatient.call_tool("create_opportunity", arguments)
        assert gave_up.cancelled_caught  # the client stopped waiting; the write goes on upstream
        async with authorized_client(f"{base}/mcp", bearer(banner), mode) as again:
            result = await again.call_tool("create_opportunity", arguments)
        state = httpx2.get(f"{crm}/_sandbox/state", timeout=10).json()
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None and result.structured_content["action"] == "already_done"
    assert len(state["plazbot"]) == 1  # one deal, whichever way the call was repeated
    assert result.structured_content["id"] == state["plazbot"][0]["id"]
