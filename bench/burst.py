"""The fleet's shared rate limit, measured (part of `make chaos`): two replicas on one PostgreSQL
journal send a burst of 300 LeadConnector upserts for one location at once; the sandbox plays the CRM's
limit (100 requests per 10 s, a 429 beyond) and reports the busiest 10 s it saw."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx2

from bench.chaos import Replica, start_replica
from bench.run import ACCEPT, OURS, free_port, wait_http
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
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="opportunity-burst-")))
        token = "omcp_" + secrets.token_urlsafe(24)
        (tmp / "config.toml").write_text('[tokens.burst]\nenv = "BURST_TOKEN"\naccounts = ["*"]\n')
        port = free_port()
        sandbox = f"http://127.0.0.1:{port}"
        crm = subprocess.Popen(
            [*OURS, "sandbox", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def stop_crm() -> None:
            crm.terminate()
            crm.wait(timeout=20)

        stack.callback(stop_crm)
        wait_http(f"{sandbox}/_sandbox/state", crm)
        env = {
            **os.environ,
            "OPPORTUNITY_MCP_LOG_LEVEL": "WARNING",
            "OPPORTUNITY_MCP_CALL_BUDGET": "45",
            "LEADCONNECTOR_BASE_URL": sandbox,
            "LEADCONNECTOR_TOKEN": LEADCONNECTOR_TOKEN,
            "LEADCONNECTOR_LOCATION_ID": LC_LOCATION,
            "LEADCONNECTOR_PIPELINE_ID": LC_PIPELINE,
            "OPPORTUNITY_MCP_JOURNAL": fresh_database(database),
            "OPPORTUNITY_MCP_CONFIG": str(tmp / "config.toml"),
            "BURST_TOKEN": token,
        }
        replicas = [Replica(free_port(), tmp / f"replica-{i}.log") for i in (1, 2)]

        def stop_all() -> None:
            for replica in replicas:
                if replica.proc is not None and replica.proc.poll() is None:
                    replica.proc.terminate()
                    replica.proc.wait(timeout=30)

        stack.callback(stop_all)
        for replica in replicas:
            start_replica(replica, env)
        started = time.monotonic()
        kinds = anyio.run(_fire, [r.url for r in replicas], token, calls)
        seconds = time.monotonic() - started
        state = httpx2.get(f"{sandbox}/_sandbox/state", timeout=30).json()
        return {
            "calls": calls,
            "seconds": round(seconds, 1),
            "answered_ok": kinds.count("ok"),
            "errors": kinds.count("error"),
            "deals": len(state["leadconnector"]),
            "busiest_10s": state["lc_peak"],
            "refused_429": state["lc_refused"],
        }
