"""The fleet's shared rate limit, measured (part of `make chaos`): two replicas on one PostgreSQL
journal send a burst of 300 LeadConnector upserts for one location at once; the sandbox plays the CRM's
limit (100 requests per 10 s, a 429 beyond) and reports the busiest 10 s it saw."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

import anyio
import httpx2

from bench.fleet import start_fleet
from bench.run import ACCEPT
from opportunity_mcp.sandbox import LC_LOCATION, LC_PIPELINE, LEADCONNECTOR_TOKEN
from tests.postgres import fresh_database


async def _fire(urls: list[str], token: str, calls: int) -> list[str]:
    """`calls` upserts at once over the replicas; the kinds of answer."""
    kinds: list[str] = []
    headers = {**ACCEPT, "Authorization": f"Bearer {token}"}

    async def one(n: int, http: httpx2.AsyncClient) -> None:
        arguments = {"name": f"Burst {n}", "monetaryValue": n}
        body = {
            "jsonrpc": "2.0",
            "id": n,
            "method": "tools/call",
            "params": {"name": "upsert_opportunity", "arguments": arguments},
        }
        answer = await http.post(urls[n % len(urls)], json=body, headers=headers)
        result = answer.json().get("result", {}) if answer.status_code == 200 else {}
        kinds.append("error" if result.get("isError") or not result else "ok")

    limits = httpx2.Limits(max_connections=calls, max_keepalive_connections=calls)
    async with httpx2.AsyncClient(timeout=90, limits=limits) as http, anyio.create_task_group() as group:
        for n in range(calls):
            group.start_soon(one, n, http)
    return kinds


def run_burst(database: str, calls: int = 300) -> dict[str, Any]:
    with ExitStack() as stack:
        journal = fresh_database(database)
        fleet = start_fleet(
            stack,
            lambda sandbox: {
                "OPPORTUNITY_MCP_LOG_LEVEL": "WARNING",
                "OPPORTUNITY_MCP_CALL_BUDGET": "45",  # the last of 300 waits about two windows
                "LEADCONNECTOR_BASE_URL": sandbox,
                "LEADCONNECTOR_TOKEN": LEADCONNECTOR_TOKEN,
                "LEADCONNECTOR_LOCATION_ID": LC_LOCATION,
                "LEADCONNECTOR_PIPELINE_ID": LC_PIPELINE,
                "OPPORTUNITY_MCP_JOURNAL": journal,
            },
        )
        started = time.monotonic()
        kinds = anyio.run(_fire, [r.url for r in fleet.replicas], fleet.token, calls)
        seconds = time.monotonic() - started
        state = httpx2.get(f"{fleet.sandbox}/_sandbox/state", timeout=30).json()
        return {
            "calls": calls,
            "seconds": round(seconds, 1),
            "answered_ok": kinds.count("ok"),
            "errors": kinds.count("error"),
            "deals": len(state["leadconnector"]),
            "busiest_10s": state["lc_peak"],
            "refused_429": state["lc_refused"],
        }
