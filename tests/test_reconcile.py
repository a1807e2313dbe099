"""Writes left "unknown" are settled later by reading them back: when their key or their duplicate is
seen again, by `opportunity-mcp journal --reconcile` (a real process), and by a running server in
the background. Found once → done with the deal; surely absent → failed, so a repeat may send it;
several candidates, or a CRM that cannot be read → still unknown. Nothing is sent from here."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import anyio
import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.journal import Finish, open_journal
from opportunity_mcp.sandbox import PLAZBOT_WORKSPACE, Fault, SandboxServer, SandboxState
from opportunity_mcp.sandbox.deals import add_plazbot_deal
from tests.conftest import CANARY_KEY, COMMAND, text_of

pytestmark = pytest.mark.anyio
SETTLE = 0.5
DEAL = {"description": "Premium", "amount": 1200, "contactPhone": "+51 912 345 678"}


@pytest.fixture
def settled(config: ServerConfig) -> ServerConfig:
    return replace(config, settle=SETTLE)


@pytest.fixture
async def client(settled: ServerConfig) -> AsyncIterator[Client]:
    async with Client(build_server(settled), mode="legacy") as connected:
        yield connected


async def create(client: Client, name: str, **extra: Any) -> tuple[bool, str, dict[str, Any]]:
    result = await client.call_tool("create_opportunity", {**DEAL, "name": name, **extra})
    return bool(result.is_error), text_of(result), result.structured_content or {}


def unreadable(sandbox: SandboxState, drop: str) -> None:
    """The create's answer is lost and the list cannot be read meanwhile: the call ends unknown."""
    sandbox.inject(Fault(route="plazbot.create", drop=drop))  # type: ignore[arg-type]
    sandbox.inject(Fault(route="plazbot.list", status=403, times=50))


def readable(sandbox: SandboxState) -> None:
    with sandbox.lock:
        sandbox.faults.clear()


async def test_a_key_seen_again_settles_its_unknown_write_as_done(client: Client, sandbox: SandboxState) -> None:
    unreadable(sandbox, "after")
    failed, said, _ = await create(client, "Plan anual", idempotencyKey="wamid.r1")
    assert failed and "may or may not have been created" in said
    readable(sandbox)
    failed, said, env = await create(client, "Plan anual", idempotencyKey="wamid.r1")
    (deal,) = sandbox.plazbot.values()
    assert not failed and env["action"] == "already_done" and env["id"] == deal["id"], said
    assert len(sandbox.requests_to("plazbot.create")) == 1


async def test_a_key_seen_again_whose_write_is_surely_absent_sends_it(client: Client, sandbox: SandboxState) -> None:
    unreadable(sandbox, "before")
    failed, said, _ = await create(client, "Plan anual", idempotencyKey="wamid.r2")
    assert failed and "may or may not have been created" in said and sandbox.plazbot == {}
    readable(sandbox)
    await anyio.sleep(SETTLE)
    failed, said, env = await create(client, "Plan anual", idempotencyKey="wamid.r2")
    (deal,) = sandbox.plazbot.values()
    assert not failed and env["action"] == "created" and env["id"] == deal["id"], said


async def test_a_duplicate_seen_again_settles_the_unknown_one(client: Client, sandbox: SandboxState) -> None:
    unreadable(sandbox, "after")
    failed, said, _ = await create(client, "Plan anual")
    assert failed
    readable(sandbox)
    failed, said, env = await create(client, "Plan anual")
    (deal,) = sandbox.plazbot.values()
    assert not failed and env["action"] == "already_done" and env["id"] == deal["id"], said


async def test_a_key_seen_again_while_the_crm_stays_unreadable_is_still_unknown(
    client: Client, sandbox: SandboxState
) -> None:
    unreadable(sandbox, "after")
    await create(client, "Plan anual", idempotencyKey="wamid.r3")
    failed, said, _ = await create(client, "Plan anual", idempotencyKey="wamid.r3")
    assert failed and "unknown outcome" in said and len(sandbox.plazbot) == 1


async def test_the_command_reconciles_a_mix_of_rows(
    client: Client, settled: ServerConfig, sandbox: SandboxState, sandbox_server: SandboxServer
) -> None:
    unreadable(sandbox, "after")
    await create(client, "Plan found", idempotencyKey="k-found")
    unreadable(sandbox, "before")
    await create(client, "Plan absent", idempotencyKey="k-absent")
    unreadable(sandbox, "after")
    await create(client, "Plan twin", idempotencyKey="k-twin")
    twin = add_plazbot_deal(sandbox, "Plan twin", "contact-456", amount=1200)
    readable(sandbox)
    shown = next(d for d in sandbox.plazbot.values() if d["name"] == "Plan found")
    store = open_journal(settled.journal)
    try:  # two updates whose answers were lost: one the deal shows, one it does not
        for value, key in ((shown["name"], "k-update-shown"), ("Otro nombre", "k-update-not")):
            change = {"check": "plazbot.update", "id": shown["id"], "field": "name", "value": value, "custom": None}
            claim = await store.claim(
                tool="update_opportunity_field",
                account=PLAZBOT_WORKSPACE,
                fp=key,
                args_fp=key,
                key=key,
                guard=False,
                window=0,
                intent=json.dumps(change),
            )
            assert claim.row_id is not None
            await store.finish(claim.row_id, Finish("unknown", latency_ms=10))
    finally:
        store.close()
    await anyio.sleep(SETTLE)
    env = {
        **os.environ,
        "PLAZBOT_BASE_URL": sandbox_server.url,
        "PLAZBOT_API_KEY": CANARY_KEY,
        "PLAZBOT_WORKSPACE_ID": PLAZBOT_WORKSPACE,
        "OPPORTUNITY_MCP_JOURNAL": settled.journal,
        "OPPORTUNITY_MCP_SETTLE": str(SETTLE),
    }
    done = await anyio.run_process([COMMAND, "journal", "--reconcile", "--hours", "1"], env=env, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "5 unknown write(s) of the last 1 h read back: " in out
    assert all(f"{n} {what}" in out for n, what in ((2, "done"), (2, "absent"), (1, "several"))), (
        out + done.stderr.decode()
    )
    assert "k-found" in out and twin["name"] in str(sandbox.plazbot.values())
    store = open_journal(settled.journal)
    try:
        rows = {row.idem_key: row for row in await store.recent(10)}
    finally:
        store.close()
    assert rows["k-found"].outcome == "done" and rows["k-found"].opportunity_id == shown["id"]
    assert rows["k-absent"].outcome == "failed" and rows["k-twin"].outcome == "unknown"
    assert rows["k-update-shown"].outcome == "done" and rows["k-update-not"].outcome == "failed"
    assert len(sandbox.plazbot) == 3  # found, twin and its twin: nothing was sent


async def test_a_running_server_settles_its_unknown_writes_in_the_background(
    settled: ServerConfig, sandbox: SandboxState
) -> None:
    async with Client(build_server(replace(settled, reconcile_every=0.2)), mode="legacy") as client:
        unreadable(sandbox, "after")
        failed, _, _ = await create(client, "Plan anual", idempotencyKey="wamid.bg")
        assert failed
        readable(sandbox)
        deadline = time.monotonic() + 10
        outcome = "unknown"
        while outcome == "unknown" and time.monotonic() < deadline:
            await anyio.sleep(0.2)
            recent = (await client.read_resource("journal://recent")).contents[0].text  # type: ignore[union-attr]
            outcome = "done" if " done " in recent.splitlines()[0] else "unknown"
    assert outcome == "done" and len(sandbox.plazbot) == 1
