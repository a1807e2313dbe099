"""The HTTP transport guarding itself: a health probe, a body size limit, Host checks that stay on
off loopback (through the HTTP app in memory), and, against real processes, the refusal to start off
loopback without allowed hosts and a graceful stop that lets an in-flight write finish."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import anyio
import httpx2
import pytest

from opportunity_mcp import __version__
from opportunity_mcp.config import ConfigError, HttpSettings, ServerConfig, TokenGrant, token_digest
from opportunity_mcp.http_app import HttpOptions, build_http_app
from opportunity_mcp.journal import open_journal
from opportunity_mcp.tools import TOOLS
from tests.asgi import MCP_HEADERS, PING, raw, serving
from tests.conftest import COMMAND, bearer, http_server

pytestmark = pytest.mark.anyio

TOKEN = "omcp_guard-test-token-0123456789"


def _exited(pid: int) -> bool:
    """Gone, or a zombie waiting for its parent (the test) to collect it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_healthz_and_the_body_limit(config: ServerConfig) -> None:
    grant = TokenGrant("t", token_digest(TOKEN), frozenset({"*"}))
    async with serving(config, HttpOptions(grants=(grant,))) as transport, raw(transport) as http:
        health = (await http.get("/healthz")).json()  # probes need no token
        big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 300_000}})
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
        too_big = await http.post("/mcp", headers=headers, content=big)
        small = await http.post("/mcp", headers=headers, content=PING)
    assert health == {"ok": True, "version": __version__, "tools": [spec.name for spec in TOOLS]}
    assert too_big.status_code == 413
    assert small.status_code == 200


async def test_healthz_says_503_when_the_journal_cannot_be_read(config: ServerConfig) -> None:
    journal = open_journal(config.journal)
    async with serving(config, journal=journal) as transport, raw(transport) as http:
        journal.close()  # what a lost database looks like to a probe
        answer = await http.get("/healthz")
    assert answer.status_code == 503 and answer.json()["journal"].startswith("cannot be written"), answer.json()


@pytest.mark.slow
def test_off_loopback_it_will_not_start_without_allowed_hosts() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPPORTUNITY_MCP_ALLOWED")}
    done = subprocess.run(
        [COMMAND, "--sandbox", "--transport", "http", "--host", "127.0.0.2", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "set OPPORTUNITY_MCP_ALLOWED_HOSTS" in done.stderr


async def test_off_loopback_host_checks_stay_on(config: ServerConfig) -> None:
    settings = HttpSettings(OPPORTUNITY_MCP_ALLOWED_HOSTS="crm-bot.internal,crm-bot.internal:*")
    options = HttpOptions(host="10.1.2.3", settings=settings)
    async with serving(config, options) as transport, raw(transport) as http:
        allowed = await http.post("/mcp", headers={**MCP_HEADERS, "Host": "crm-bot.internal:8765"}, content=PING)
        foreign = await http.post("/mcp", headers={**MCP_HEADERS, "Host": "evil.example"}, content=PING)
    assert allowed.status_code == 200
    assert foreign.status_code in (403, 421)


def test_off_loopback_the_app_is_not_built_without_allowed_hosts(config: ServerConfig) -> None:
    with pytest.raises(ConfigError, match="set OPPORTUNITY_MCP_ALLOWED_HOSTS"):
        build_http_app(config, open_journal(":memory:"), HttpOptions(host="10.1.2.3", settings=HttpSettings()))


@pytest.mark.slow
def test_sigterm_lets_an_in_flight_write_finish(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal.sqlite3")
    env = {**os.environ, "OPPORTUNITY_MCP_JOURNAL": journal}
    with http_server("--sandbox", env=env) as (base, banner):
        found = re.search(r"the sandbox CRM at (http://127\.0\.0\.1:\d+)", banner)
        assert found
        sandbox_url = found.group(1)
        fault = {"route": "plazbot.create", "delay": 1.5}
        assert httpx2.post(f"{sandbox_url}/_sandbox/faults", json=fault, timeout=10).status_code == 200
        pid = int(subprocess.check_output(["pgrep", "-f", "--", f"--port {base.rsplit(':', 1)[1]}"]).split()[0])

        async def call_then_stop() -> str:
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {
                    "name": "create_opportunity",
                    "arguments": {"name": "Último", "description": "d", "amount": 1},
                },
            }
            async with anyio.create_task_group() as group:

                async def stop() -> None:
                    # Once the sandbox has the create (it holds it 1.5 s), the write is in flight: stop.
                    async with httpx2.AsyncClient(timeout=10) as probe:
                        for _ in range(1000):  # polling the sandbox's request log, 20 s at most
                            received = (await probe.get(f"{sandbox_url}/_sandbox/requests")).json()
                            if any(r["route"] == "plazbot.create" for r in received):
                                break
                            await anyio.sleep(0.02)
                        else:
                            raise AssertionError("the create never reached the sandbox")
                    os.kill(pid, signal.SIGTERM)

                group.start_soon(stop)
                async with httpx2.AsyncClient(timeout=30) as raw:
                    answer = await raw.post(f"{base}/mcp", headers={**MCP_HEADERS, **bearer(banner)}, json=body)
            result = answer.json()["result"]
            assert result["isError"] is False
            text: str = result["content"][0]["text"]
            return text

        text = anyio.run(call_then_stop)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _exited(pid):
            time.sleep(0.05)
        assert _exited(pid), "the server did not stop after SIGTERM"
    assert text.startswith("Created opportunity OPP-")
    import sqlite3

    with sqlite3.connect(journal) as db:
        assert db.execute("SELECT outcome FROM writes").fetchall() == [("done",)]
