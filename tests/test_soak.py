"""A bounded soak: 500 tool calls, 20% of them meeting an injected fault, and an agent that blindly
retries every failed call. Nothing may be duplicated, everything the agent was told exists must exist
exactly once, and no journal row may be left pending."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.sandbox import Fault, SandboxState
from tests.conftest import CANARY_KEY, CANARY_TOKEN, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CALLS = 500
FAULT_RATE = 0.2
RETRIES = 3
FAULTS = [
    Fault(status=500),
    Fault(status=502, body="<html>bad gateway</html>", content_type="text/html"),
    Fault(status=503),
    Fault(status=429),
    Fault(status=429, headers={"Retry-After": "0"}),
    Fault(drop="before"),
    Fault(drop="after"),
    Fault(delay=0.6),
    Fault(status=200, body="{not json"),
    Fault(status=502, apply=True),
]
ROUTE = {
    "create_opportunity": "plazbot.create",
    "update_opportunity_field": "plazbot.update",
    "upsert_opportunity": "lc.upsert",
}


def _next_call(rng: random.Random, n: int, created: list[str]) -> tuple[str, dict[str, Any]]:
    kind = rng.random()
    if kind < 0.45 or not created:
        deal: dict[str, Any] = {"name": f"Deal {n}", "description": f"Soak deal {n}", "amount": n}
        if rng.random() < 0.5:
            deal["idempotencyKey"] = f"wamid.{n}"  # a bot flow passes the message id
        return "create_opportunity", deal
    if kind < 0.7:
        return "update_opportunity_field", {"opportunityId": rng.choice(created), "field": "amount", "value": n}
    upsert: dict[str, Any] = {"name": f"LC deal {n}", "monetaryValue": n}
    if rng.random() < 0.5:
        upsert["idempotencyKey"] = f"lc.{n}"
    return "upsert_opportunity", upsert


async def test_soak_no_duplicates_no_lost_confirmations(
    config: ServerConfig, sandbox: SandboxState, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(20261121)
    told: Counter[str] = Counter()  # opportunity ids the agent was told exist, by deal name
    names: dict[str, str] = {}
    created: list[str] = []
    calls = faults = errors = 0
    texts: list[str] = []
    async with Client(build_server(replace(config, http_timeout=0.4, call_budget=3.0)), mode="legacy") as client:
        n = 0
        while calls < CALLS:
            n += 1
            tool, arguments = _next_call(rng, n, created)
            for _attempt in range(1 + RETRIES):
                if calls >= CALLS:
                    break
                if rng.random() < FAULT_RATE:
                    faults += 1
                    sandbox.inject(replace(rng.choice(FAULTS), route=ROUTE[tool]))
                calls += 1
                result = await client.call_tool(tool, arguments)
                texts.append(text_of(result))
                if not result.is_error:
                    env = result.structured_content
                    assert env is not None
                    if tool != "update_opportunity_field":
                        names[env["id"]] = arguments["name"]
                        if env["id"] not in created and tool == "create_opportunity":
                            created.append(env["id"])
                    break
                errors += 1  # blind retry: same call, same arguments
            with sandbox.lock:
                sandbox.faults.clear()
        recent = await client.read_resource("journal://recent")
        texts.append(str(recent.contents[0]))

    with sandbox.lock:
        stored = {**sandbox.plazbot, **sandbox.leadconnector}
    per_name = Counter(o["name"] for o in stored.values())
    duplicates = {name: count for name, count in per_name.items() if count > 1}
    missing = [opp_id for opp_id in names if opp_id not in stored]
    told.update(names.values())
    with sqlite3.connect(config.journal) as db:
        outcomes = Counter(r[0] for r in db.execute("SELECT outcome FROM writes"))
        journal_dump = repr(db.execute("SELECT * FROM writes").fetchall())
        sent, journaled = db.execute("SELECT SUM(requests), COUNT(*) FROM writes").fetchone()

    print(
        f"\nsoak: {calls} calls, {faults} faults injected, {errors} failed calls retried blindly, "
        f"{len(stored)} opportunities stored, journal {dict(outcomes)}, {sent} upstream requests for {journaled} "
        f"journaled writes ({sent / journaled:.2f} per write), {len(duplicates)} duplicates, {len(missing)} missing"
    )
    assert calls == CALLS and faults > 50
    assert duplicates == {}
    assert missing == []
    assert all(count == 1 for count in told.values())  # one id per deal, however often it was retried
    assert outcomes["pending"] == 0 and set(outcomes) <= {"done", "failed", "unknown"}
    for where in (*texts, caplog.text, journal_dump):
        assert CANARY_KEY not in where and CANARY_TOKEN not in where
