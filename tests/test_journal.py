"""The write journal through the protocol: repeats answered without an upstream call, duplicates
guarded, unknown outcomes refused, every row finished, and no secret in any row."""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any

import anyio
import pytest
from mcp import Client

from opportunity_mcp.config import ServerConfig
from opportunity_mcp.journal import Finish, is_postgres, open_journal
from opportunity_mcp.sandbox import Fault, SandboxServer, SandboxState
from tests.conftest import CANARY_KEY, CANARY_TOKEN, canary_config, text_of

pytestmark = pytest.mark.anyio
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200, "contactId": "contact-456"}


@pytest.fixture
def config(sandbox_server: SandboxServer, sandbox: SandboxState, journal_target: str) -> ServerConfig:
    """These tests run once per journal backend: SQLite, and PostgreSQL."""
    return canary_config(sandbox_server.url, http_timeout=2.0, journal=journal_target)


def _rows(config: ServerConfig) -> list[tuple[Any, ...]]:
    if is_postgres(config.journal):
        import psycopg

        with psycopg.connect(config.journal) as conn:
            return [tuple(r) for r in conn.execute("SELECT * FROM writes ORDER BY id").fetchall()]
    with sqlite3.connect(config.journal) as db:
        return db.execute("SELECT * FROM writes ORDER BY id").fetchall()


async def test_same_key_returns_the_first_result_without_calling_the_crm(
    client: Client, sandbox: SandboxState, config: ServerConfig
) -> None:
    first = await client.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "wamid.HBgL1"})
    again = await client.call_tool(
        "create_opportunity", {**DEAL, "amount": 999, "allowDuplicate": True, "idempotencyKey": "wamid.HBgL1"}
    )
    assert len(sandbox.requests_to("plazbot.create")) == 1 and len(sandbox.plazbot) == 1
    assert first.structured_content and again.structured_content
    assert again.structured_content["action"] == "already_done"
    assert again.structured_content["id"] == first.structured_content["id"]
    assert "the new arguments differ and were NOT applied" in again.structured_content["warnings"][0]
    assert text_of(again).startswith("Already done, nothing sent: opportunity OPP-")


async def test_identical_create_inside_the_window_is_answered_as_done(client: Client, sandbox: SandboxState) -> None:
    first = await client.call_tool("create_opportunity", DEAL)
    again = await client.call_tool("create_opportunity", {**DEAL, "name": "  plan ANUAL "})
    forced = await client.call_tool("create_opportunity", {**DEAL, "allowDuplicate": True})
    assert first.structured_content and again.structured_content and forced.structured_content
    assert again.structured_content["action"] == "already_done"
    assert "an identical opportunity was created" in again.structured_content["warnings"][0]
    assert forced.structured_content["action"] == "created"
    assert len(sandbox.plazbot) == 2


async def test_unknown_outcome_refuses_the_repeat_until_checked(
    client: Client, sandbox: SandboxState, config: ServerConfig
) -> None:
    sandbox.inject(Fault(route="plazbot.create", drop="after"))
    sandbox.inject(Fault(route="plazbot.list", status=403, times=100))  # read-back fails: test_read_back.py
    lost = await client.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "k1"})
    assert lost.is_error and "may or may not have been created" in text_of(lost)
    by_key = await client.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "k1"})
    by_content = await client.call_tool("create_opportunity", DEAL)
    assert by_key.is_error and "has an unknown outcome" in text_of(by_key)
    assert by_content.is_error and "An identical create" in text_of(by_content)
    assert len(sandbox.requests_to("plazbot.create")) == 1 and len(sandbox.plazbot) == 1
    forced = await client.call_tool("create_opportunity", {**DEAL, "allowDuplicate": True})
    assert not forced.is_error


async def test_a_failed_key_may_be_used_again(client: Client, sandbox: SandboxState) -> None:
    sandbox.inject(Fault(route="plazbot.create", status=400, body='{"message": "no"}'))
    failed = await client.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "k2"})
    retried = await client.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "k2"})
    assert failed.is_error and not retried.is_error
    assert retried.structured_content and retried.structured_content["action"] == "created"


async def test_every_row_is_finished_and_holds_no_secret(
    client: Client, sandbox: SandboxState, config: ServerConfig
) -> None:
    await client.call_tool("create_opportunity", DEAL)
    sandbox.inject(Fault(route="plazbot.create", status=401))
    await client.call_tool("create_opportunity", {**DEAL, "name": "otro"})
    await client.call_tool("upsert_opportunity", {"name": "lc", "idempotencyKey": "m-1"})
    outcomes = [r[8] for r in _rows(config)]  # id, at, tool, account, fingerprint, args_fp, key, guard, outcome
    assert outcomes == ["done", "failed", "done"]
    dump = repr(_rows(config))
    assert CANARY_KEY not in dump and CANARY_TOKEN not in dump and "Bearer" not in dump


async def test_recent_writes_resource(client: Client, sandbox: SandboxState) -> None:
    await client.call_tool("create_opportunity", DEAL)
    listed = await client.list_resources()
    assert [r.uri for r in listed.resources] == ["journal://recent"]
    read = await client.read_resource("journal://recent")
    text = read.contents[0].text  # type: ignore[union-attr]
    assert "create_opportunity ws-sandbox done HTTP 200 OPP-" in text


@pytest.mark.slow
async def test_journal_command_prints_a_table(config: ServerConfig) -> None:
    journal = open_journal(config.journal)
    claim = await journal.claim(
        tool="create_opportunity", account="ws", fp="f", args_fp="a", key=None, guard=True, window=60
    )
    assert claim.row_id is not None
    await journal.finish(claim.row_id, Finish("done", status=200, opportunity_id="opp-9", code="OPP-2026-0009"))
    journal.close()
    done = await anyio.run_process(
        [sys.executable, "-m", "opportunity_mcp", "journal"],
        env={**os.environ, "OPPORTUNITY_MCP_JOURNAL": config.journal},
        check=False,
    )
    assert done.returncode == 0
    assert "create_opportunity ws done HTTP 200 OPP-2026-0009 id opp-9" in done.stdout.decode()


async def test_a_changed_status_is_a_new_upsert_not_a_repeat(client: Client, sandbox: SandboxState) -> None:
    sandbox.options.upsert_shapes = "contact"
    base = {"name": "A", "contactId": "contact-lc-1"}
    opened = await client.call_tool("upsert_opportunity", {**base, "status": "open"})
    won = await client.call_tool("upsert_opportunity", {**base, "status": "won"})
    repeat = await client.call_tool("upsert_opportunity", {**base, "status": "won"})
    assert opened.structured_content and won.structured_content and repeat.structured_content
    assert won.structured_content["action"] == "updated"
    # The contact's deal is no longer open: the repeat closes nothing and creates nothing.
    assert repeat.is_error and "has no open deal in this pipeline to mark won" in text_of(repeat)
    assert next(iter(sandbox.leadconnector.values()))["status"] == "won" and len(sandbox.leadconnector) == 1
    # The open deal found by contact is updated by its id; this contact-keyed location refuses that form
    # once (nothing written) and is then sent the contact-keyed upsert.
    assert len(sandbox.requests_to("lc.upsert")) == 3


async def test_a_repeat_with_other_values_says_they_were_not_applied(client: Client, sandbox: SandboxState) -> None:
    await client.call_tool("create_opportunity", DEAL)
    again = await client.call_tool("create_opportunity", {**DEAL, "stageId": "stage-won"})
    assert again.structured_content is not None
    assert "this call's other values were NOT applied" in again.structured_content["warnings"][0]


@pytest.mark.parametrize("key", ["wamid.same-moment", None])
async def test_a_repeat_sent_while_the_first_is_in_flight_waits_for_its_answer(
    config: ServerConfig, sandbox: SandboxState, key: str | None
) -> None:
    """Two clients (as two replicas sharing the journal would) send the same create at once."""
    from opportunity_mcp.app import build_server

    sandbox.inject(Fault(route="plazbot.create", delay=0.4))
    arguments = {**DEAL, **({"idempotencyKey": key} if key else {})}
    notes: list[str] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(message or "")

    answers: list[Any] = []
    async with (
        Client(build_server(config), mode="legacy") as first,
        Client(build_server(config), mode="legacy") as second,
    ):

        async def call(client: Client, after_the_first: bool) -> None:
            # The second starts once the sandbox holds the first create (polled, with a deadline).
            for _ in range(1000 if after_the_first else 0):
                if sandbox.requests_to("plazbot.create"):
                    break
                await anyio.sleep(0.01)
            answers.append(await client.call_tool("create_opportunity", arguments, progress_callback=progress))

        async with anyio.create_task_group() as group:
            group.start_soon(call, first, False)
            group.start_soon(call, second, True)
    created, repeated = answers
    assert not created.is_error and not repeated.is_error, text_of(repeated)
    assert created.structured_content["action"] == "created"
    assert repeated.structured_content["action"] == "already_done"
    assert repeated.structured_content["id"] == created.structured_content["id"]
    assert notes == ["the same write is in progress; waiting for its answer"]
    assert len(sandbox.plazbot) == 1 and len(sandbox.requests_to("plazbot.create")) == 1
