"""A SQLite journal whose write lock another process holds: the waiting write goes off the event loop,
so every other call of this process is answered meanwhile."""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.sandbox import SandboxState

# ping is the legacy era's liveness check, and this test speaks that era on purpose.
pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:ping is removed")]
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}
# Holds the journal's write lock until told to let go (a line on its stdin): no timing involved.
HOLD = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


async def test_a_ping_is_answered_while_a_create_waits_for_a_lock_held_elsewhere(
    config: ServerConfig, sandbox: SandboxState
) -> None:
    async with Client(build_server(config), mode="legacy") as client:
        await client.call_tool("create_opportunity", DEAL)  # the journal file exists, its tables too
        holder = subprocess.Popen(  # noqa: ASYNC220 - started once, before the calls under test
            [sys.executable, "-c", HOLD, config.journal], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        events: list[str] = []
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

            async def create() -> None:
                result = await client.call_tool("create_opportunity", {**DEAL, "name": "Otro plan"})
                assert not result.is_error, result
                events.append("created")

            async with anyio.create_task_group() as group:
                group.start_soon(create)
                for _ in range(5):  # answered while the create cannot finish: the lock is still held
                    await client.send_ping()
                    events.append("ping")
                assert len(sandbox.requests_to("plazbot.create")) == 1  # the second waits at its claim
                assert holder.stdin is not None
                holder.stdin.write("let go\n")
                holder.stdin.flush()
                events.append("released")
        finally:
            if holder.stdin is not None and not holder.stdin.closed:
                holder.stdin.close()
            holder.wait(timeout=30)
            if holder.stdout is not None:
                holder.stdout.close()
    # Ordered by what happened, not by how long it took: the pings while the lock was held, then the
    # create, which had waited for the other process to let go.
    assert events == ["ping"] * 5 + ["released", "created"]
    assert len(sandbox.requests_to("plazbot.create")) == 2
