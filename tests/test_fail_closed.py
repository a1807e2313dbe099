"""Fail closed: while the journal cannot be written, no write reaches the CRM, the agent reads that
nothing was sent and when to try again, and /healthz answers 503; once the journal is back the same
process takes writes again, without a restart. SQLite made read-only, PostgreSQL stopped and started."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from opportunity_mcp.config import ServerConfig
from opportunity_mcp.journal import Journal, SqliteJournal, open_journal
from tests.asgi import mcp_client, raw, serving
from tests.conftest import text_of
from tests.postgres import fresh_database, restartable, start, stop

pytestmark = pytest.mark.anyio
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200, "idempotencyKey": "wamid.fail-closed"}


def _read_only(journal: Journal, on: bool) -> None:
    """A read-only journal file, as SQLite reports it (SQLITE_READONLY on every write). The tests run
    as root, whom file permissions do not stop, so the journal's own connections are told instead."""
    assert isinstance(journal, SqliteJournal)
    for conn in (journal._inline, journal._waiting):
        conn.db.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")


async def _health(transport: Any) -> tuple[int, dict[str, Any]]:
    async with raw(transport) as http:
        answer = await http.get("/healthz")
    return answer.status_code, answer.json()


async def _fails_closed_and_recovers(
    config: ServerConfig, journal: Journal, sandbox: Any, break_it: Any, mend_it: Any
) -> None:
    async with serving(config, journal=journal) as transport:
        assert (await _health(transport))[0] == 200
        await anyio.to_thread.run_sync(break_it)
        status, body = await _health(transport)
        assert status == 503 and body["ok"] is False and body["journal"].startswith("cannot be written"), body
        async with mcp_client(transport) as client:
            refused = await client.call_tool("create_opportunity", DEAL)
        assert refused.is_error
        text = text_of(refused)
        assert text.startswith("Error executing tool create_opportunity: Not sent: the write journal cannot be"), text
        assert "Nothing was sent to the CRM" in text and "Try the same call again in about 30 s" in text
        assert refused.structured_content == {"ok": False, "error": text.split(": ", 1)[1]}
        assert sandbox.plazbot == {}  # nothing reached the CRM

        await anyio.to_thread.run_sync(mend_it)
        deadline = time.monotonic() + 15
        while (await _health(transport))[0] != 200:  # the same process, no restart
            assert time.monotonic() < deadline, "the journal did not come back"
            await anyio.sleep(0.2)
        async with mcp_client(transport) as client:
            created = await client.call_tool("create_opportunity", DEAL)
        assert not created.is_error and text_of(created).startswith("Created opportunity OPP-"), text_of(created)
        assert len(sandbox.plazbot) == 1


async def test_sqlite_read_only_fails_closed_then_recovers(config: ServerConfig, sandbox: Any) -> None:
    journal = open_journal(config.journal)
    try:
        await _fails_closed_and_recovers(
            config, journal, sandbox, lambda: _read_only(journal, True), lambda: _read_only(journal, False)
        )
    finally:
        journal.close()


@pytest.mark.slow
async def test_postgresql_down_fails_closed_then_recovers(config: ServerConfig, sandbox: Any, postgres: str) -> None:
    if not restartable(postgres):
        pytest.skip("OPPORTUNITY_MCP_TEST_POSTGRES names a server these tests do not run, so cannot restart")
    url = fresh_database(postgres)
    journal = open_journal(url)
    try:
        await _fails_closed_and_recovers(config, journal, sandbox, lambda: stop(url), lambda: start(url))
    finally:
        journal.close()
