"""LeadConnector's burst limit (100 requests per location per 10 s) held for a fleet: with the journal
on PostgreSQL, replicas count their requests in one window in the database; and the CRM's own
`X-RateLimit-Remaining` on every answer tightens the window when the CRM counts more than we do.
The sandbox plays the limit, refuses beyond it with a 429, and records the busiest 10 s it saw."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

from opportunity_mcp.journal import open_journal
from opportunity_mcp.sandbox import SandboxServer, SandboxState
from tests.asgi import mcp_client, serving
from tests.conftest import CANARY_TOKEN, canary_config, text_of
from tests.postgres import fresh_database

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _burst(transports: list[Any], calls: int, prefix: str, at_once: int | None = None) -> list[str]:
    """`calls` upserts, all at once or `at_once` at a time, spread over the replicas; the error texts."""
    errors: list[str] = []
    room = anyio.Semaphore(at_once or calls)

    async def one(n: int) -> None:
        async with room, mcp_client(transports[n % len(transports)]) as client:
            result = await client.call_tool("upsert_opportunity", {"name": f"{prefix} {n}", "monetaryValue": n})
        if result.is_error:
            errors.append(text_of(result))

    async with anyio.create_task_group() as tasks:
        for n in range(calls):
            tasks.start_soon(one, n)
    return errors


async def test_two_replicas_share_one_window_through_postgresql(
    sandbox_server: SandboxServer, sandbox: SandboxState, postgres: str, tmp_path: Any
) -> None:
    url = fresh_database(postgres)
    # A budget that lets the last of 300 calls wait its turn (three windows of 100).
    config = canary_config(sandbox_server.url, journal=url, call_budget=45.0)
    first, second = open_journal(url), open_journal(url)
    try:
        async with serving(config, journal=first) as one, serving(config, journal=second) as two:
            errors = await _burst([one, two], 300, "Burst")
    finally:
        first.close()
        second.close()
    state = sandbox.snapshot()
    assert errors == []  # no call failed because of the limit: each waited within its budget
    assert len(state["leadconnector"]) == 300
    assert state["lc_refused"] == 0  # the CRM never had to say 429
    assert state["lc_peak"] <= 100, state["lc_peak"]  # never more than 100 in any 10 s
    assert state["lc_peak"] >= 90  # and the budget was used, not wasted


async def test_the_crms_remaining_count_tightens_the_window(
    sandbox_server: SandboxServer, sandbox: SandboxState, tmp_path: Any
) -> None:
    # Another app on the same location spends 70 of the 100 first.
    headers = {"Authorization": f"Bearer {CANARY_TOKEN}", "Version": "2021-07-28"}
    async with httpx2.AsyncClient(base_url=sandbox_server.url, headers=headers) as other:
        for n in range(70):  # any request counts: reads of deals it does not have, here
            assert (await other.get(f"/opportunities/other-{n}")).status_code != 429
    config = canary_config(sandbox_server.url, journal=str(tmp_path / "journal.sqlite3"), call_budget=30.0)
    async with serving(config) as transport:
        # Eight conversations at a time: what is already in flight when an answer tells us is not
        # recalled, so a burst of 60 at once would meet 429s (and wait them out); from the first
        # answer on, none.
        errors = await _burst([transport], 60, "Ours", at_once=8)
    state = sandbox.snapshot()
    assert errors == []
    assert state["lc_refused"] == 0  # the first answer's X-RateLimit-Remaining held back the rest
    assert len(state["leadconnector"]) == 60
    assert state["lc_peak"] <= 100
