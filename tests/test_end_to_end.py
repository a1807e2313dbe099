"""The server started as a user starts it: the console script on stdio, and the HTTP server as a
separate process, each with its embedded sandbox CRM, driven by the MCP client."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import text_of

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).parent / "opportunity-mcp")
TOOLS = ["create_opportunity", "update_opportunity_field", "upsert_opportunity"]
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200.5, "contactId": "contact-456"}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_console_script_on_stdio(mode: str) -> None:
    params = StdioServerParameters(command=COMMAND, args=["--sandbox"], cwd=str(ROOT))
    async with Client(params, mode=mode) as client:
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def http_server() -> Iterator[tuple[str, str]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--sandbox", "--transport", "http", "--port", str(port)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    banner = ""
    while time.monotonic() < deadline and "listening on" not in banner:
        banner = proc.stderr.readline()
        if not banner and proc.poll() is not None:
            break
    try:
        assert "listening on" in banner, banner
        yield f"http://127.0.0.1:{port}/mcp", banner
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        assert proc.stdout is not None and proc.stdout.read() == ""


async def test_http_server_as_a_user_starts_it(http_server: tuple[str, str]) -> None:
    url, banner = http_server
    assert url in banner
    assert "tools: create_opportunity, update_opportunity_field, upsert_opportunity" in banner
    assert "writes go to the sandbox CRM at http://127.0.0.1:" in banner
    for mode in ("legacy", "auto"):
        async with Client(url, mode=mode) as client:
            listed = await client.list_tools()
            assert [t.name for t in listed.tools] == TOOLS
            created = await client.call_tool("create_opportunity", DEAL)
            assert not created.is_error, text_of(created)
            # The same deal twice: the second answer comes from the journal, nothing is re-sent.
            expected = (
                "Created opportunity OPP-" if mode == "legacy" else "Already done, nothing sent: opportunity OPP-"
            )
            assert text_of(created).startswith(expected)


async def test_http_refuses_a_foreign_host_header(http_server: tuple[str, str]) -> None:
    import httpx2

    url, _ = http_server
    async with httpx2.AsyncClient() as raw:
        answer = await raw.post(
            url,
            headers={
                "Host": "evil.example",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
            content=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
        )
    assert answer.status_code in (403, 421)
