"""The HTTP transport guarding itself: a health probe, a body size limit, Host checks that stay on
off loopback, and a graceful stop that lets an in-flight write finish."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx2

from tests.conftest import COMMAND, bearer, http_server

MCP_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}
PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


def _exited(pid: int) -> bool:
    """Gone, or a zombie waiting for its parent (the test) to collect it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_healthz_and_the_body_limit() -> None:
    with http_server("--sandbox") as (base, banner):
        health = httpx2.get(f"{base}/healthz", timeout=10).json()  # probes need no token
        big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 300_000}})
        headers = {**MCP_HEADERS, **bearer(banner)}
        too_big = httpx2.post(f"{base}/mcp", headers=headers, content=big, timeout=10)
        small = httpx2.post(f"{base}/mcp", headers=headers, content=PING, timeout=10)
    assert health == {
        "ok": True,
        "version": "0.1.0",
        "tools": ["create_opportunity", "update_opportunity_field", "upsert_opportunity"],
    }
    assert too_big.status_code == 413
    assert small.status_code == 200


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


def test_off_loopback_host_checks_stay_on() -> None:
    env = {**os.environ, "OPPORTUNITY_MCP_ALLOWED_HOSTS": "crm-bot.internal,crm-bot.internal:*"}
    with http_server("--sandbox", env=env, host="127.0.0.2") as (base, banner):
        port = base.rsplit(":", 1)[1]
        headers = {**MCP_HEADERS, **bearer(banner)}
        allowed = httpx2.post(
            f"{base}/mcp", headers={**headers, "Host": f"crm-bot.internal:{port}"}, content=PING, timeout=10
        )
        foreign = httpx2.post(f"{base}/mcp", headers={**headers, "Host": "evil.example"}, content=PING, timeout=10)
    assert allowed.status_code == 200
    assert foreign.status_code in (403, 421)


def test_sigterm_lets_an_in_flight_write_finish(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal.sqlite3")
    env = {**os.environ, "OPPORTUNITY_MCP_JOURNAL": journal}
    with http_server("--sandbox", env=env) as (base, banner):
        found = re.search(r"the sandbox CRM at (http://127\.0\.0\.1:\d+)", banner)
        assert found
        fault = {"route": "plazbot.create", "delay": 1.5}
        assert httpx2.post(f"{found.group(1)}/_sandbox/faults", json=fault, timeout=10).status_code == 200
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
                    await anyio.sleep(0.5)  # the write is now in flight: the sandbox holds it 1.5 s
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
    assert sys.executable
