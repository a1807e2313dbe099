"""`make load`: the scale-out run. Two opportunity-mcp processes share one PostgreSQL journal and one
standalone sandbox CRM; 32 concurrent clients send 2,000 creates over streamable HTTP, alternating
between the two servers, with overlapping idempotency keys (every key is sent twice: half of the pairs
at the same moment to both servers, half later as a replay).

It then counts what matters: duplicate opportunities in the sandbox (must be 0), journal rows lost or
left pending (must be 0), and reports calls/s and latency percentiles. Writes bench/results/load.json
and load.md. `tests/test_load.py` runs the same scenario and asserts the counts, never the speed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg

from bench.run import ACCEPT, OURS, RESULTS, cpu_model, free_port, pct, wait_http
from opportunity_mcp.sandbox import PLAZBOT_KEY, PLAZBOT_WORKSPACE
from tests.postgres import fresh_database, postgres_server


@dataclass
class LoadResult:
    calls: int
    clients: int
    keys: int
    seconds: float
    answers: dict[str, int]
    latencies_ms: list[float] = field(repr=False)
    sandbox_opportunities: int
    duplicate_opportunities: int
    journal_rows: dict[str, int]
    lost_rows: int

    def figures(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "clients": self.clients,
            "servers": 2,
            "distinct_keys": self.keys,
            "seconds": round(self.seconds, 2),
            "calls_per_s": round(self.calls / self.seconds, 1),
            "p50_ms": round(pct(self.latencies_ms, 50), 1),
            "p99_ms": round(pct(self.latencies_ms, 99), 1),
            "answers": self.answers,
            "sandbox_opportunities": self.sandbox_opportunities,
            "duplicate_opportunities": self.duplicate_opportunities,
            "journal_rows": self.journal_rows,
            "lost_rows": self.lost_rows,
        }


def schedule(calls: int, seed: int = 6) -> list[str]:
    """The idempotency key of each call, in sending order: every key twice. Half of the pairs sit next
    to each other (sent at once, to the two servers: a race), the other half are sent once early and
    once more at the end (a replay)."""
    rng = random.Random(seed)  # noqa: S311  (a repeatable order, not a secret)
    keys = [f"wamid.load-{n:05d}" for n in range(calls // 2)]
    together, apart = keys[: len(keys) // 2], keys[len(keys) // 2 :]
    blocks = [[key, key] for key in together] + [[key] for key in apart]
    rng.shuffle(blocks)
    replays = apart[:]
    rng.shuffle(replays)
    return [key for block in blocks for key in block] + replays


def _classify(answer: httpx2.Response) -> str:
    if answer.status_code != 200:
        return f"http {answer.status_code}"
    result = answer.json().get("result", {})
    if not result.get("isError"):
        return str(result.get("structuredContent", {}).get("action", "?"))
    text = result.get("content", [{}])[0].get("text", "")
    return "in progress" if "in progress right now" in text else "error: " + text[:80]


async def _drive(
    urls: list[str], token: str, order: list[str], clients: int
) -> tuple[Counter[str], list[float], float]:
    answers: Counter[str] = Counter()
    latencies: list[float] = []
    queue = iter(enumerate(order))
    headers = {**ACCEPT, "Authorization": f"Bearer {token}"}

    async def client(http: httpx2.AsyncClient) -> None:
        for n, key in queue:
            body = {
                "jsonrpc": "2.0",
                "id": n,
                "method": "tools/call",
                "params": {
                    "name": "create_opportunity",
                    "arguments": {
                        "name": f"Load deal {key}",
                        "description": "Plan anual",
                        "amount": 100 + n % 7,
                        "idempotencyKey": key,
                    },
                },
            }
            started = time.perf_counter()
            answer = await http.post(urls[n % len(urls)], json=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            answers[_classify(answer)] += 1

    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as http:
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(clients):
                group.start_soon(client, http)
        elapsed = time.perf_counter() - started
    return answers, latencies, elapsed


def run_load(calls: int = 2000, clients: int = 32, database: str | None = None) -> LoadResult:
    """The whole scenario; `database` is a PostgreSQL server URL (a throwaway one is started if None)."""
    with ExitStack() as stack:
        if database is None:
            database = stack.enter_context(postgres_server())
        journal = fresh_database(database)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="opportunity-load-")))
        token = "omcp_" + secrets.token_urlsafe(24)
        (tmp / "config.toml").write_text('[tokens.load]\nenv = "LOAD_TOKEN"\naccounts = ["*"]\n')
        procs: list[subprocess.Popen[bytes]] = []

        def stop_all() -> None:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=20)
                if proc.stderr is not None:
                    proc.stderr.close()

        stack.callback(stop_all)
        sandbox_port = free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        procs.append(_spawn([*OURS, "sandbox", "--port", str(sandbox_port)], dict(os.environ)))
        wait_http(f"{sandbox_url}/_sandbox/state", procs[0])
        env = {
            **os.environ,
            "OPPORTUNITY_MCP_LOG_LEVEL": "WARNING",
            "PLAZBOT_BASE_URL": sandbox_url,
            "PLAZBOT_API_KEY": PLAZBOT_KEY,
            "PLAZBOT_WORKSPACE_ID": PLAZBOT_WORKSPACE,
            "OPPORTUNITY_MCP_JOURNAL": journal,
            "OPPORTUNITY_MCP_CONFIG": str(tmp / "config.toml"),
            "LOAD_TOKEN": token,
        }
        urls = []
        for _ in range(2):
            port = free_port()
            procs.append(_spawn([*OURS, "--transport", "http", "--port", str(port)], env))
            wait_http(f"http://127.0.0.1:{port}/healthz", procs[-1])
            urls.append(f"http://127.0.0.1:{port}/mcp")
        order = schedule(calls)
        answers, latencies, elapsed = anyio.run(_drive, urls, token, order, clients)
        opportunities = httpx2.get(f"{sandbox_url}/_sandbox/state", timeout=30).json()["plazbot"]
        stop_all()  # SIGTERM: each server finishes in flight, closes its journal
        procs.clear()
        names = Counter(str(o["name"]) for o in opportunities)
        with psycopg.connect(journal) as conn:
            outcomes: dict[str, int] = dict(
                conn.execute("SELECT outcome, COUNT(*) FROM writes GROUP BY outcome").fetchall()
            )
            done = {
                str(r[0]): str(r[1])
                for r in conn.execute("SELECT idem_key, opportunity_id FROM writes WHERE outcome = 'done'").fetchall()
            }
        ids = {str(o["id"]) for o in opportunities}
        # Lost: an opportunity in the CRM with no finished journal row naming it, or a row not finished.
        lost = len(ids - set(done.values())) + outcomes.get("pending", 0)
        return LoadResult(
            calls=len(order),
            clients=clients,
            keys=len(set(order)),
            seconds=elapsed,
            answers=dict(answers),
            latencies_ms=latencies,
            sandbox_opportunities=len(opportunities),
            duplicate_opportunities=sum(n - 1 for n in names.values() if n > 1),
            journal_rows={str(k): int(v) for k, v in outcomes.items()},
            lost_rows=lost,
        )


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def markdown(figures: dict[str, Any]) -> str:
    answers = ", ".join(f"{v:,} {k}" for k, v in sorted(figures["answers"].items(), key=lambda kv: -kv[1]))
    rows = ", ".join(f"{v:,} {k}" for k, v in sorted(figures["journal_rows"].items()))
    return "\n".join(
        [
            "# Load: two replicas, one PostgreSQL journal",
            "",
            f"{figures['when']}, {figures['cpu']}. Reproduce: `make load`.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| calls (creates; {figures['distinct_keys']:,} keys, each sent twice) | {figures['calls']:,} |",
            f"| servers / concurrent clients | {figures['servers']} / {figures['clients']} |",
            f"| calls/s | {figures['calls_per_s']:,} |",
            f"| latency p50 / p99 | {figures['p50_ms']} ms / {figures['p99_ms']} ms |",
            f"| answers | {answers} |",
            f"| opportunities in the sandbox | {figures['sandbox_opportunities']:,} |",
            f"| duplicate opportunities | {figures['duplicate_opportunities']} |",
            f"| journal rows | {rows} |",
            f"| lost journal rows | {figures['lost_rows']} |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    opts = parser.parse_args()
    result = run_load(opts.calls, opts.clients)
    figures = {
        **result.figures(),
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu_model()}, {os.cpu_count()} cores",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "load.md").write_text(markdown(figures))
    print(markdown(figures))


if __name__ == "__main__":
    main()
