"""Retries, the per-location limiter, the call time budget and progress notifications, through the
protocol; and the journal's uniqueness across processes sharing one file."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.sandbox import Fault, SandboxState
from tests.conftest import text_of

pytestmark = pytest.mark.anyio


async def test_a_burst_waits_for_the_limiter_and_says_so(config: ServerConfig, sandbox: SandboxState) -> None:
    notes: list[str] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(message or "")

    limited = replace(config, rate_limit=3, rate_window=0.5)
    async with Client(build_server(limited), mode="legacy") as client:
        for n in range(5):
            result = await client.call_tool("upsert_opportunity", {"name": f"burst {n}"}, progress_callback=progress)
            assert not result.is_error, text_of(result)
    assert len(sandbox.requests_to("lc.upsert")) == 5
    assert any("waiting for the request-rate limit" in note for note in notes)


async def test_a_retry_wait_is_reported_as_progress(client: Client, sandbox: SandboxState) -> None:
    notes: list[str] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(message or "")

    sandbox.inject(Fault(route="lc.upsert", status=429, headers={"Retry-After": "0.2"}))
    result = await client.call_tool("upsert_opportunity", {"name": "x"}, progress_callback=progress)
    assert not result.is_error
    assert notes == ["retrying after: LeadConnector is limiting the request rate (HTTP 429); waiting 0.2 s"]


async def test_the_call_budget_bounds_a_hanging_crm(config: ServerConfig, sandbox: SandboxState) -> None:
    sandbox.plazbot["opp-1"] = {"id": "opp-1", "workspaceId": "ws-sandbox", "amount": 1, "name": "x"}
    sandbox.inject(Fault(route="plazbot.update", delay=5, times=100))
    budgeted = replace(config, http_timeout=30, call_budget=1.0)
    # A bound on a hang, not a measurement: without the budget one try alone would wait 30 s.
    with anyio.fail_after(15):
        async with Client(build_server(budgeted), mode="legacy") as client:
            result = await client.call_tool(
                "update_opportunity_field", {"opportunityId": "opp-1", "field": "amount", "value": 2}
            )
    assert result.is_error and "did not answer in time" in text_of(result)
    assert len(sandbox.requests_to("plazbot.update")) == 1  # no retry started past the budget


CLAIM = """
import sys
import anyio
from opportunity_mcp.journal import open_journal
journal = open_journal(sys.argv[1])
claim = anyio.run(lambda: journal.claim(tool="create_opportunity", account="ws", fp="same", args_fp="a",
                                        key=sys.argv[2] or None, guard=True, window=600))
print("won" if claim.row_id is not None else "lost")
"""


@pytest.mark.parametrize("key", ["wamid.1", None])
@pytest.mark.slow
def test_one_winner_across_processes(tmp_path: Path, key: str | None) -> None:
    path = str(tmp_path / "journal.sqlite3")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, path, *([key] if key else [""])], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    verdicts = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert verdicts == ["lost"] * 5 + ["won"]
