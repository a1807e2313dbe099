"""Confirm before writing, on every client, through the MCP SDK's own client against the sandbox:
`dryRun` on every tool and resolution path writes nothing; an account's `confirm` rules make a write
wait for a person: asked by elicitation (mid-call before protocol 2026-07-28, by a returned question
from it on, over HTTP across two replicas), or shown as a preview whose code, bound to the payload
and the account, writes it when sent back."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.sandbox import LC_PIPELINE, SandboxState
from opportunity_mcp.sandbox.deals import add_lc_deal, add_plazbot_deal
from opportunity_mcp.tools.confirm import mint, valid
from tests.asgi import BASE, Alternating, serving
from tests.conftest import text_of

pytestmark = pytest.mark.anyio
MARIA = "+51 912 345 678"  # contact-456 on Plazbot, LiKJ2vnRg5ETM8Z19K7 on LeadConnector
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200, "contactPhone": MARIA}
CONTACTED = "0c4f3b9e-2f7a-4a51-9d1e-5b8a1c2d3e4f"
WRITES = ("plazbot.create", "plazbot.update", "lc.upsert", "lc.create", "lc.update")


def writes(sandbox: SandboxState) -> int:
    return sum(len(sandbox.requests_to(route)) for route in WRITES)


def rows(config: ServerConfig) -> int:
    with sqlite3.connect(config.journal) as db:
        return int(db.execute("SELECT COUNT(*) FROM writes").fetchone()[0])


def confirming(config: ServerConfig, rule: str) -> ServerConfig:
    accounts = tuple(replace(a, options=(*a.options, ("confirm", rule))) for a in config.accounts)
    return replace(config, accounts=accounts)


def answering(action: str, write: bool = True) -> Any:
    asked: list[str] = []

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        content = {"write": write} if action == "accept" else None
        return types.ElicitResult(action=action, content=content)

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
    result = await client.call_tool(tool, arguments)
    return bool(result.is_error), text_of(result), result.structured_content or {}


# --- dryRun ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "said", "sent"),
    [
        (
            "create_opportunity",
            {**DEAL, "assigneeEmail": "juan@acme.com", "stageName": "Propuesta"},
            "would create 'Plan anual' for 1,200.00, stage 'Propuesta', contact 'Maria Lopez (+51912345678)'",
            {"contactId": "contact-456", "assignedComercialId": "user-123", "amount": 1200.0},
        ),
        (
            "update_opportunity_field",
            {"contactPhone": MARIA, "field": "stageId", "value": "Propuesta"},
            "would update set stageId to 'Propuesta' on deal",
            {"field": "stageId"},
        ),
        (
            "upsert_opportunity",
            {"name": "Plan anual", "contactPhone": MARIA, "stageName": "Contacted", "customFields": {"Budget": 9}},
            "would update deal",
            {"customFields": [{"id": "cf-budget", "field_value": "9"}], "pipelineStageId": CONTACTED},
        ),
        (
            "upsert_opportunity",
            {"name": "Plan anual", "contactPhone": MARIA, "status": "won", "monetaryValue": 300},
            "would update deal",
            {"status": "won", "monetaryValue": 300.0},
        ),
    ],
)
async def test_a_dry_run_resolves_everything_and_writes_nothing(
    client: Client,
    sandbox: SandboxState,
    config: ServerConfig,
    tool: str,
    arguments: dict[str, Any],
    said: str,
    sent: dict[str, Any],
) -> None:
    add_plazbot_deal(sandbox, "Plan anual", "contact-456")
    add_lc_deal(
        sandbox, "Plan anual", "LiKJ2vnRg5ETM8Z19K7", pipeline=LC_PIPELINE, stage="7915dedc-8f18-44d5-8bc3-77c04e994a10"
    )
    sandbox.requests.clear()
    failed, text, structured = await call(client, tool, {**arguments, "dryRun": True})
    assert not failed and text.startswith("Dry run, nothing written:") and said in text, text
    assert structured["dryRun"] is True and all(structured["request"].get(k) == v for k, v in sent.items())
    assert writes(sandbox) == 0 and rows(config) == 0
    assert sandbox.requests  # it did resolve: the reads a real call makes first


async def test_a_dry_run_says_a_repeat_would_send_nothing(client: Client, sandbox: SandboxState) -> None:
    done = await client.call_tool("create_opportunity", {**DEAL, "idempotencyKey": "wamid.d1"})
    assert not done.is_error
    failed, text, _ = await call(client, "create_opportunity", {**DEAL, "dryRun": True, "idempotencyKey": "wamid.d1"})
    assert not failed and "a real call would send nothing" in text
    failed, text, _ = await call(client, "create_opportunity", {**DEAL, "dryRun": True})  # the duplicate guard
    assert not failed and "a real call would send nothing" in text
    assert len(sandbox.requests_to("plazbot.create")) == 1


# --- confirmation before protocol 2026-07-28: mid-call elicitation, or a code -------------------------


@pytest.fixture
def strict(config: ServerConfig) -> ServerConfig:
    return confirming(config, "amount>1000, status=won|lost, assignee")


async def test_a_person_who_accepts_gets_one_write(strict: ServerConfig, sandbox: SandboxState) -> None:
    ask = answering("accept")
    async with Client(build_server(strict), mode="legacy", elicitation_callback=ask) as client:
        failed, text, env = await call(client, "create_opportunity", DEAL)
    assert not failed and "confirmed by the user" in text and env["confirmed"] == "confirmed by the user", text
    assert len(sandbox.plazbot) == 1 and len(ask.asked) == 1
    assert "create 'Plan anual' for 1,200.00" in ask.asked[0] and "amount above 1,000.00" in ask.asked[0]
    with sqlite3.connect(strict.journal) as db:
        (envelope,) = db.execute("SELECT envelope FROM writes").fetchone()
    assert '"confirmed":"confirmed by the user"' in envelope


@pytest.mark.parametrize(("action", "write"), [("decline", True), ("cancel", True), ("accept", False)])
async def test_a_person_who_declines_gets_no_write(
    strict: ServerConfig, sandbox: SandboxState, action: str, write: bool
) -> None:
    async with Client(build_server(strict), mode="legacy", elicitation_callback=answering(action, write)) as client:
        failed, text, _ = await call(client, "create_opportunity", DEAL)
    assert failed and "Not written: the person did not confirm it" in text
    assert sandbox.plazbot == {} and rows(strict) == 0


async def test_a_write_no_rule_covers_is_not_asked(strict: ServerConfig, sandbox: SandboxState) -> None:
    ask = answering("decline")
    async with Client(build_server(strict), mode="legacy", elicitation_callback=ask) as client:
        failed, text, _ = await call(client, "create_opportunity", {**DEAL, "amount": 900})
    assert not failed and ask.asked == [] and len(sandbox.plazbot) == 1, text


async def test_without_elicitation_a_preview_code_writes_exactly_that(
    strict: ServerConfig, sandbox: SandboxState
) -> None:
    async with Client(build_server(strict), mode="legacy") as client:
        failed, text, preview = await call(client, "create_opportunity", DEAL)
        assert not failed and text.startswith("Not written yet: this account asks a person to confirm"), text
        assert preview["ok"] is False and sandbox.plazbot == {} and rows(strict) == 0
        code = preview["confirmation"]
        tampered = await call(client, "create_opportunity", {**DEAL, "amount": 1300, "confirmation": code})
        assert tampered[0] and "Not confirmed: the confirmation code does not match this write" in tampered[1]
        failed, text, env = await call(client, "create_opportunity", {**DEAL, "confirmation": code})
    assert not failed and env["confirmed"] == "confirmed with code" and len(sandbox.plazbot) == 1, text


async def test_a_lost_or_won_change_waits_on_leadconnector_too(strict: ServerConfig, sandbox: SandboxState) -> None:
    mine = add_lc_deal(
        sandbox, "Plan anual", "LiKJ2vnRg5ETM8Z19K7", pipeline=LC_PIPELINE, stage="7915dedc-8f18-44d5-8bc3-77c04e994a10"
    )
    async with Client(build_server(strict), mode="legacy") as client:
        failed, text, preview = await call(client, "upsert_opportunity", {"id": mine["id"], "status": "won"})
        assert not failed and "(status won)" in text and "confirmation" in preview
        again = {"id": mine["id"], "status": "won", "confirmation": preview["confirmation"]}
        failed, text, _ = await call(client, "upsert_opportunity", again)
    assert not failed and sandbox.leadconnector[mine["id"]]["status"] == "won", text


def test_a_code_is_bound_to_its_account_its_payload_and_five_minutes(config: ServerConfig) -> None:
    plazbot, other = config.accounts[0], replace(config.accounts[0], target="ws-other")
    payload = {"name": "Plan anual", "amount": 1200.0}
    code = mint(plazbot, "create_opportunity", payload, now=1_000_000)
    assert valid(plazbot, "create_opportunity", payload, code, now=1_000_010)
    assert not valid(other, "create_opportunity", payload, code, now=1_000_010)  # replayed on another account
    assert not valid(plazbot, "create_opportunity", {**payload, "amount": 1300.0}, code, now=1_000_010)
    assert not valid(plazbot, "update_opportunity_field", payload, code, now=1_000_010)
    assert not valid(plazbot, "create_opportunity", payload, code, now=1_000_301)  # expired
    assert not valid(plazbot, "create_opportunity", payload, code.replace("c1.", "c2."), now=1_000_010)


# --- protocol 2026-07-28: the question returned, answered on the next round, on any replica ------------


async def test_the_round_trip_era_asks_by_returning_the_question(strict: ServerConfig, sandbox: SandboxState) -> None:
    ask = answering("accept")
    async with Client(build_server(strict), mode="auto", elicitation_callback=ask) as client:
        assert (client.session.protocol_version or "") >= "2026-07-28"
        failed, text, env = await call(client, "create_opportunity", DEAL)
    assert not failed and env["confirmed"] == "confirmed by the user" and len(sandbox.plazbot) == 1, text
    assert len(ask.asked) == 1


async def test_the_round_trip_era_declined_writes_nothing(strict: ServerConfig, sandbox: SandboxState) -> None:
    async with Client(build_server(strict), mode="auto", elicitation_callback=answering("decline")) as client:
        failed, text, _ = await call(client, "create_opportunity", DEAL)
    assert failed and "did not confirm" in text and sandbox.plazbot == {}


@asynccontextmanager
async def fleet(config: ServerConfig) -> AsyncIterator[Alternating]:
    async with serving(config) as one, serving(config) as two:
        yield Alternating(one, two)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_over_http_across_two_replicas(strict: ServerConfig, sandbox: SandboxState, mode: str) -> None:
    ask = answering("accept")
    async with fleet(strict) as both, httpx2.AsyncClient(transport=both, base_url=BASE, timeout=30) as http:
        transport = streamable_http_client(f"{BASE}/mcp", http_client=http)
        async with Client(transport, mode=mode, elicitation_callback=ask) as client:
            failed, text, result = await call(client, "create_opportunity", DEAL)
            if mode == "legacy":  # stateless HTTP carries no request mid-call: a preview and its code
                assert not failed and ask.asked == [] and "confirmation" in result, text
                failed, text, result = await call(
                    client, "create_opportunity", {**DEAL, "confirmation": result["confirmation"]}
                )
            else:
                assert len(ask.asked) == 1
        assert min(both.seen) > 0
    assert not failed and result["confirmed"] in ("confirmed by the user", "confirmed with code"), text
    assert len(sandbox.plazbot) == 1


async def test_a_code_confirms_one_write_and_only_what_it_was_given_for(
    strict: ServerConfig, sandbox: SandboxState
) -> None:
    async with Client(build_server(strict), mode="legacy") as client:
        _, _, preview = await call(client, "create_opportunity", DEAL)
        code = preview["confirmation"]
        forced = await call(client, "create_opportunity", {**DEAL, "allowDuplicate": True, "confirmation": code})
        assert forced[0] and "does not match this write" in forced[1]
        first = await call(client, "create_opportunity", {**DEAL, "confirmation": code})
        again = await call(client, "create_opportunity", {**DEAL, "confirmation": code})
    assert not first[0] and not again[0] and again[2]["action"] == "already_done", again[1]
    assert len(sandbox.plazbot) == 1


async def test_a_code_confirms_one_write_whatever_keys_come_with_it(
    strict: ServerConfig, sandbox: SandboxState
) -> None:
    async with Client(build_server(strict), mode="legacy") as client:
        _, _, preview = await call(client, "create_opportunity", DEAL)
        code = preview["confirmation"]
        for key in ("wamid.k1", "wamid.k2"):
            assert not (
                await call(client, "create_opportunity", {**DEAL, "confirmation": code, "idempotencyKey": key})
            )[0]
        taken = await call(client, "create_opportunity", {**DEAL, "idempotencyKey": f"confirm:{code}"})
    assert len(sandbox.plazbot) == 1
    assert taken[0] and "must not start with 'confirm:'" in taken[1]
