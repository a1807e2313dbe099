"""A crash mid-write with SQLite: the server process is killed with SIGKILL while its create is at the
CRM, then started again on the same journal file. The journal opens intact, the interrupted write is
reported as unknown at once (its process is gone), and a repeat is refused as a possible duplicate
until the agent passes allowDuplicate."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from opportunity_mcp.sandbox import SandboxServer, SandboxState
from opportunity_mcp.sandbox.state import PLAZBOT_WORKSPACE, Fault
from tests.conftest import CANARY_KEY, COMMAND, authorized_client, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}


@contextmanager
def _server(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [COMMAND, "--transport", "http", "--port", str(port), "--no-auth"]
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    banner, deadline = "", time.monotonic() + 30
    while "listening on" not in banner and time.monotonic() < deadline and proc.poll() is None:
        banner += proc.stderr.readline()
    try:
        assert "listening on" in banner, banner
        yield proc, f"http://127.0.0.1:{port}/mcp"
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)
        proc.stderr.close()


async def test_sigkill_mid_create_then_restart(
    sandbox_server: SandboxServer, sandbox: SandboxState, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite3"
    env = {
        **os.environ,
        "PLAZBOT_BASE_URL": sandbox_server.url,
        "PLAZBOT_API_KEY": CANARY_KEY,
        "PLAZBOT_WORKSPACE_ID": PLAZBOT_WORKSPACE,
        "OPPORTUNITY_MCP_JOURNAL": str(journal),
    }
    sandbox.inject(Fault(route="plazbot.create", delay=5.0))  # the CRM writes it, then answers late
    with _server(env) as (proc, url):

        async def create() -> None:
            async with authorized_client(url, {}) as client:
                await client.call_tool("create_opportunity", DEAL)

        with pytest.raises(BaseException):  # noqa: B017 - the connection dies with the server
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(create)
                for _ in range(200):  # until the create has reached the CRM
                    if sandbox.plazbot:
                        break
                    await anyio.sleep(0.05)
                assert sandbox.plazbot
                os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL

    with sqlite3.connect(journal) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT outcome FROM writes").fetchall() == [("pending",)]

    with _server(env) as (_proc, url):
        async with authorized_client(url, {}) as client:
            again = await client.call_tool("create_opportunity", DEAL)
            # The crashed create is read back in the CRM: found, so the repeat is answered from it.
            (deal,) = sandbox.plazbot.values()
            assert not again.is_error and again.structured_content is not None, text_of(again)
            assert again.structured_content["action"] == "already_done"
            assert again.structured_content["id"] == deal["id"]
            assert "confirmed later by reading it back" in text_of(again) + str(again.structured_content)
            assert len(sandbox.plazbot) == 1  # nothing more was sent
            forced = await client.call_tool("create_opportunity", {**DEAL, "allowDuplicate": True})
            assert not forced.is_error and text_of(forced).startswith("Created opportunity OPP-"), text_of(forced)
    assert len(sandbox.plazbot) == 2
    with sqlite3.connect(journal) as db:
        assert sorted(db.execute("SELECT outcome FROM writes").fetchall()) == [("done",), ("done",)]
