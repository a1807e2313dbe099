"""A SQLite journal whose write lock another process holds: the waiting write goes off the event loop,
so every other call of this process is answered meanwhile."""

from __future__ import annotations

import subprocess
import sys
import time

import anyio
import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.sandbox import SandboxState

# ping is the legacy era's liveness check, and this test speaks that era on purpose.
pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:ping is removed")]
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}
HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


async def test_a_ping_is_answered_while_a_create_waits_for_a_lock_held_elsewhere(
    config: ServerConfig, sandbox: SandboxState
) -> None:
    async with Client(build_server(config), mode="legacy") as client:
        await client.call_tool("create_opportunity", DEAL)  # the journal file exists, its tables too
        holder = subprocess.Popen(  # noqa: ASYNC220 - started once, before the calls under test
            [sys.executable, "-c", HOLD, config.journal, "3"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            created: dict[str, float] = {}

            async def create() -> None:
                started = time.monotonic()
                result = await client.call_tool("create_opportunity", {**DEAL, "name": "Otro plan"})
                assert not result.is_error, result
                created["seconds"] = time.monotonic() - started

            async with anyio.create_task_group() as group:
                group.start_soon(create)
                await anyio.sleep(0.3)  # the create is now waiting for the journal's write lock
                pings = []
                for _ in range(5):
                    started = time.monotonic()
                    await client.send_ping()
                    pings.append(time.monotonic() - started)
                    await anyio.sleep(0.1)
                assert "seconds" not in created, "the create did not wait for the lock"
        finally:
            holder.wait(timeout=30)
            if holder.stdout is not None:
                holder.stdout.close()
    assert max(pings) < 0.1, pings
    assert created["seconds"] >= 2.0  # it waited for the other process, then wrote
    assert len(sandbox.requests_to("plazbot.create")) == 2
