"""`make chaos`: a fleet that fails on purpose (loopback only, a few minutes at most, stops by itself).

Two opportunity-mcp replicas share one PostgreSQL journal and one standalone sandbox CRM. The sandbox
injects faults into creates all along (a 503, a connection dropped before or after the write, an
answer slower than the clients wait). Clients behave like agents: each conversation sends one create
with its message id as the idempotency key, gives up after 2 s, and re-sends the same call (same key,
either replica) after a time-out, a dropped connection or an answer that says to try again. Midway one
replica is killed with SIGKILL and started again, and later PostgreSQL is restarted.

Afterwards it counts: duplicate deals; calls answered "created" whose deal is missing; deals no call
knows (answered created, already done or unknown); journal rows left pending once the replicas are gone;
secrets in the replicas' logs. Writes bench/results/chaos.json and chaos.md; `tests/test_chaos.py`
runs a short version and asserts the counts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx2
import psycopg

from bench.figures import publish
from bench.fleet import Replica, start_fleet
from bench.run import ACCEPT, RESULTS, cpu_model
from opportunity_mcp.journal import open_journal
from opportunity_mcp.sandbox import PLAZBOT_KEY, PLAZBOT_WORKSPACE
from tests.postgres import fresh_database, postgres_server, start, stop

FAULTS: list[dict[str, Any]] = [
    {"route": "plazbot.create", "status": 503},
    {"route": "plazbot.create", "drop": "before"},
    {"route": "plazbot.create", "drop": "after"},
    {"route": "plazbot.create", "delay": 3.0},
]
CLIENT_WAIT = 2.0  # seconds a client waits for an answer before it re-sends
ATTEMPTS = 8


@dataclass
class Tally:
    final: dict[str, str] = field(default_factory=dict)  # conversation → its last answer's kind
    ids: dict[str, str] = field(default_factory=dict)  # conversation → the opportunity id it was told
    seen: dict[str, set[str]] = field(default_factory=dict)  # conversation → every kind it met
    texts: Counter[str] = field(default_factory=Counter)  # the error texts met, by their first words
    resends: int = 0
    read_back: Counter[str] = field(default_factory=Counter)  # answers settled by reading the CRM
    events: list[str] = field(default_factory=list)


def _kind(answer: httpx2.Response, tally: Tally) -> tuple[str, str | None]:
    """What a tools/call answer says: created / already_done / unknown / retry / refused."""
    if answer.status_code != 200:
        tally.texts[f"HTTP {answer.status_code}"] += 1
        return "retry", None
    result = answer.json().get("result", {})
    structured = result.get("structuredContent") or {}
    if not result.get("isError"):
        said = " ".join(str(w) for w in structured.get("warnings") or ())
        if "confirmed later" in said:
            tally.read_back["confirmed later"] += 1
        elif "confirmed by reading it back" in said:
            tally.read_back["confirmed"] += 1
        tally.read_back["sent once more"] += "sent once more" in said
        return str(structured.get("action")), structured.get("id")
    text = str(structured.get("error", ""))
    tally.texts[" ".join(text.split()[:7])] += 1
    if "unknown outcome" in text or "may or may not have been created" in text:
        return "unknown", None
    if ("try" in text.lower() and "again" in text.lower()) or "in progress" in text or "HTTP 5" in text:
        return "retry", None
    return "refused", None


async def _conversation(n: int, replicas: list[Replica], token: str, tally: Tally, http: httpx2.AsyncClient) -> None:
    key = f"wamid.chaos-{n}"
    name = f"Chaos deal {n}"
    body = {
        "jsonrpc": "2.0",
        "method": "tools/call",
        "params": {
            "name": "create_opportunity",
            "arguments": {"name": name, "description": "Plan anual", "amount": 100 + n, "idempotencyKey": key},
        },
    }
    headers = {**ACCEPT, "Authorization": f"Bearer {token}"}
    rng = random.Random(n)  # noqa: S311 - pauses, not secrets
    for attempt in range(ATTEMPTS):
        replica = replicas[(n + attempt) % len(replicas)]
        try:
            with anyio.fail_after(CLIENT_WAIT):
                answer = await http.post(replica.url, json={**body, "id": attempt}, headers=headers)
            kind, opp_id = _kind(answer, tally)
        except (TimeoutError, httpx2.HTTPError):
            kind, opp_id = "no answer", None
        tally.seen.setdefault(name, set()).add(kind)
        tally.final[name] = kind
        if opp_id:
            tally.ids[name] = opp_id
        if kind in ("created", "already_done", "unknown", "refused"):
            return
        tally.resends += 1
        await anyio.sleep(0.2 + rng.random() * 0.6)


async def _drive(replicas: list[Replica], token: str, sandbox: str, database: str, calls: int, clients: int) -> Tally:
    tally = Tally()
    queue = iter(range(calls))
    done = anyio.Event()
    # Conversations arrive steadily over the run, so that the failures below meet traffic in flight.
    duration = max(8.0, calls / 30)
    begin = time.monotonic()

    async def client(http: httpx2.AsyncClient) -> None:
        for n in queue:
            await anyio.sleep(max(0.0, begin + n * duration / calls - time.monotonic()))
            await _conversation(n, replicas, token, tally, http)

    async def faults(http: httpx2.AsyncClient) -> None:
        rng = random.Random(13)  # noqa: S311 - a fault schedule, not secrets
        while not done.is_set():
            await http.post(f"{sandbox}/_sandbox/faults", json=rng.choice(FAULTS))
            await anyio.sleep(0.2)

    async def havoc() -> None:
        await anyio.sleep(duration * 0.25)
        victim = replicas[0]
        assert victim.proc is not None
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        tally.events.append(f"{_at(begin)} replica 1 killed with SIGKILL")
        await anyio.sleep(1.0)
        await anyio.to_thread.run_sync(victim.start)
        tally.events.append(f"{_at(begin)} replica 1 started again")
        await anyio.sleep(max(0.0, begin + duration * 0.55 - time.monotonic()))
        await anyio.to_thread.run_sync(stop, database)
        tally.events.append(f"{_at(begin)} PostgreSQL stopped")
        await anyio.sleep(1.0)
        await anyio.to_thread.run_sync(start, database)
        tally.events.append(f"{_at(begin)} PostgreSQL started again")

    limits = httpx2.Limits(max_connections=clients * 2, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(timeout=30, limits=limits) as http:
        with anyio.fail_after(240):  # bounded, whatever happens
            async with anyio.create_task_group() as background:
                background.start_soon(faults, http)
                background.start_soon(havoc)
                async with anyio.create_task_group() as group:
                    for _ in range(clients):
                        group.start_soon(client, http)
                done.set()
    return tally


def _at(begin: float) -> str:
    return f"at {time.monotonic() - begin:.1f} s"


def run_chaos(calls: int = 600, clients: int = 16, database: str | None = None) -> dict[str, Any]:
    """The whole run; `database` is a PostgreSQL server this module started (it is restarted midway)."""
    with ExitStack() as stack:
        if database is None:
            database = stack.enter_context(postgres_server())
        journal = fresh_database(database)

        def accounts(sandbox: str) -> dict[str, str]:
            return {
                "OPPORTUNITY_MCP_LOG_LEVEL": "INFO",
                "OPPORTUNITY_MCP_CALL_BUDGET": "8",
                "PLAZBOT_BASE_URL": sandbox,
                "PLAZBOT_API_KEY": PLAZBOT_KEY,
                "PLAZBOT_WORKSPACE_ID": PLAZBOT_WORKSPACE,
                "OPPORTUNITY_MCP_JOURNAL": journal,
            }

        fleet = start_fleet(stack, accounts)
        replicas, token, sandbox = fleet.replicas, fleet.token, fleet.sandbox
        started = time.monotonic()
        tally = anyio.run(_drive, replicas, token, sandbox, journal, calls, clients)
        seconds = time.monotonic() - started
        httpx2.delete(f"{sandbox}/_sandbox/faults", timeout=10)
        deals = httpx2.get(f"{sandbox}/_sandbox/state", timeout=30).json()["plazbot"]
        fleet.stop()  # the replicas are gone: every row still pending is now a write nobody will finish
        store = open_journal(journal)
        try:
            settled = anyio.run(store.settle)
        finally:
            store.close()
        with psycopg.connect(journal) as conn:
            rows: dict[str, int] = dict(
                conn.execute("SELECT outcome, COUNT(*) FROM writes GROUP BY outcome").fetchall()
            )
        logs = fleet.logs()
        by_name = Counter(str(d["name"]) for d in deals)
        ids = {str(d["id"]) for d in deals}
        known = {name for name, kinds in tally.seen.items() if kinds & {"created", "already_done", "unknown"}}
        told_created = {n for n, kinds in tally.seen.items() if kinds & {"created", "already_done"}}
        return {
            "calls": calls,
            "clients": clients,
            "seconds": round(seconds, 1),
            "resends": tally.resends,
            "final_answers": dict(Counter(tally.final.values())),
            "unknown_share": round(100 * Counter(tally.final.values())["unknown"] / calls, 2),
            "read_back": dict(tally.read_back),
            "events": tally.events,
            "errors_met": dict(tally.texts.most_common(8)),
            "deals": len(deals),
            "duplicate_deals": sum(n - 1 for n in by_name.values() if n > 1),
            "created_but_missing": sum(1 for n in told_created if tally.ids.get(n) not in ids),
            "deals_no_call_knows": sum(1 for name in by_name if name not in known),
            "journal_rows": {str(k): int(v) for k, v in rows.items()},
            "pending_after": int(rows.get("pending", 0)),
            "settled_after_stop": settled,
            "secrets_in_logs": sum(logs.count(s) for s in (token, PLAZBOT_KEY)),
            "log_bytes": len(logs),
        }


def burst_markdown(b: dict[str, Any]) -> list[str]:
    return [
        "## One rate limit for the fleet",
        "",
        f"Two replicas, one PostgreSQL journal: {b['calls']} LeadConnector upserts for one location, all at once.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| answered without error | {b['answered_ok']} of {b['calls']} ({b['errors']} errors) |",
        f"| deals in the sandbox | {b['deals']} |",
        f"| busiest 10 s at the CRM (its limit: 100) | {b['busiest_10s']} |",
        f"| 429 answers from the CRM | {b['refused_429']} |",
        f"| time for the burst (three windows of 100) | {b['seconds']} s |",
        "",
    ]


def markdown(f: dict[str, Any]) -> str:
    answers = ", ".join(f"{v:,} {k}" for k, v in sorted(f["final_answers"].items(), key=lambda kv: -kv[1]))
    rows = ", ".join(f"{v:,} {k}" for k, v in sorted(f["journal_rows"].items()))
    rb = f.get("read_back", {})
    return "\n".join(
        [
            "# Chaos: two replicas, one PostgreSQL journal, faults, a SIGKILL and a database restart",
            "",
            f"{f['when']}, {f['cpu']}. Reproduce: `make chaos`.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| conversations (one create each, re-sent until answered) / clients | {f['calls']:,} / {f['clients']} |",
            f"| run time | {f['seconds']} s |",
            f"| re-sends (time-outs, dropped connections, 'try again' answers) | {f['resends']:,} |",
            f"| final answers | {answers} |",
            f"| answers left unknown (target ≤ 1 %) | {f['unknown_share']} % |",
            "| answers settled by reading the CRM: confirmed / confirmed later (a repeat) / sent once more"
            f" | {rb.get('confirmed', 0)} / {rb.get('confirmed later', 0)} / {rb.get('sent once more', 0)} |",
            f"| deals in the sandbox | {f['deals']:,} |",
            f"| duplicate deals | {f['duplicate_deals']} |",
            f"| calls answered created whose deal is missing | {f['created_but_missing']} |",
            f"| deals no call knows (not created, already done or unknown) | {f['deals_no_call_knows']} |",
            f"| journal rows | {rows} |",
            f"| rows pending once the replicas are gone | {f['pending_after']} |",
            f"| secrets in the replicas' logs ({f['log_bytes']:,} bytes) | {f['secrets_in_logs']} |",
            "",
            "Events: " + "; ".join(f["events"]) + ".",
            "",
            *(burst_markdown(f["burst"]) if "burst" in f else []),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--clients", type=int, default=16)
    opts = parser.parse_args()
    from bench.burst import run_burst

    with postgres_server() as database:
        chaos = run_chaos(opts.calls, opts.clients, database)
        burst = run_burst(database)
    figures = {
        **chaos,
        "burst": burst,
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu_model()}, {os.cpu_count()} cores",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "chaos.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "chaos.md").write_text(markdown(figures))
    publish("chaos", markdown(figures))
    print(markdown(figures))


if __name__ == "__main__":
    main()
