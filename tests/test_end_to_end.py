"""The server started as a user starts it: the console script on stdio, and the HTTP server as a
separate process, each with its embedded sandbox CRM, driven by the MCP client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import authorized_client, bearer, http_server, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).parent / "opportunity-mcp")
TOOLS = ["create_opportunity", "update_opportunity_field", "upsert_opportunity", "find_opportunities"]
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200.5, "contactId": "contact-456"}


@pytest.mark.parametrize("mode", ["legacy", "auto", "2026-07-28"])
async def test_console_script_on_stdio(mode: str) -> None:
    params = StdioServerParameters(command=COMMAND, args=["--sandbox"], cwd=str(ROOT))
    async with Client(params, mode=mode) as client:
        assert (client.protocol_version == "2026-07-28") is (mode != "legacy")  # auto finds the new era
        listed = await client.list_tools()
        assert [t.name for t in listed.tools] == TOOLS
        created = await client.call_tool("create_opportunity", DEAL)
        assert not created.is_error, text_of(created)
        assert created.structured_content is not None
        opp_id = created.structured_content["id"]
        updated = await client.call_tool(
            "update_opportunity_field", {"opportunityId": opp_id, "field": "stageId", "value": "stage-won"}
        )
        assert not updated.is_error and "Updated stageId" in text_of(updated)
        upserted = await client.call_tool("upsert_opportunity", {"name": "LC deal", "status": "won"})
        assert not upserted.is_error and upserted.structured_content is not None
        assert upserted.structured_content["action"] == "created"


@pytest.fixture
def http_sandbox() -> Iterator[tuple[str, str]]:
    with http_server("--sandbox") as (base, banner):
        yield f"{base}/mcp", banner


async def test_http_server_as_a_user_starts_it(http_sandbox: tuple[str, str]) -> None:
    url, banner = http_sandbox
    assert url in banner
    assert "tools: create_opportunity, update_opportunity_field, upsert_opportunity" in banner
    assert "writes go to the sandbox CRM at http://127.0.0.1:" in banner
    for mode in ("legacy", "auto", "2026-07-28"):
        async with authorized_client(url, bearer(banner), mode) as client:
            assert (client.protocol_version == "2026-07-28") is (mode != "legacy")  # auto finds the new era
            listed = await client.list_tools()
            assert [t.name for t in listed.tools] == TOOLS
            created = await client.call_tool("create_opportunity", DEAL)
            assert not created.is_error, text_of(created)
            # The same deal twice: the second answer comes from the journal, nothing is re-sent.
            expected = (
                "Created opportunity OPP-" if mode == "legacy" else "Already done, nothing sent: opportunity OPP-"
            )
            assert text_of(created).startswith(expected)


async def test_http_refuses_a_foreign_host_header(http_sandbox: tuple[str, str]) -> None:
    import httpx2

    url, banner = http_sandbox
    async with httpx2.AsyncClient() as raw:
        answer = await raw.post(
            url,
            headers={
                **bearer(banner),
                "Host": "evil.example",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
            content=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
        )
    assert answer.status_code in (403, 421)


async def test_sse_over_http_carries_progress_notifications() -> None:
    import re

    import httpx2

    notes: list[str] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(message or "")

    with http_server("--sandbox", "--sse") as (base, banner):
        found = re.search(r"the sandbox CRM at (http://127\.0\.0\.1:\d+)", banner)
        assert found
        fault = {"route": "lc.upsert", "status": 429, "headers": {"Retry-After": "0.2"}}
        async with httpx2.AsyncClient() as raw:
            assert (await raw.post(f"{found.group(1)}/_sandbox/faults", json=fault)).status_code == 200
        async with authorized_client(f"{base}/mcp", bearer(banner)) as client:
            result = await client.call_tool("upsert_opportunity", {"name": "SSE"}, progress_callback=progress)
    assert not result.is_error
    assert notes == ["retrying after: LeadConnector is limiting the request rate (HTTP 429); waiting 0.2 s"]
