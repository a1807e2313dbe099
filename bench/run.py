"""`make bench`: opportunity-mcp against the floor server, measured in one run, interleaved.

Everything talks to one sandbox CRM process on 127.0.0.1 (asyncio sockets have Nagle off). Figures:
cold start (spawn → initialize → tools/list), per-call latency and the overhead each server adds on
top of the same upstream request replayed directly with httpx2, tokens of tools/list and of every
answer (o200k_base), peak RSS of each server, and calls/s and latency over streamable HTTP under 1, 8
and 32 concurrent clients. Writes bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters

from bench.figures import publish
from bench.tokens import count

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
OURS = [str(BIN / "opportunity-mcp")]
FLOOR = [sys.executable, "-m", "bench.floor_server"]
KEY, TOKEN = "bench-plazbot-key", "bench-leadconnector-token"
ACCEPT = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}
BENCH_TOKEN = "omcp_" + secrets.token_urlsafe(24)  # for this run only


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes], deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited")
        try:
            httpx2.get(url, timeout=1)
            return
        except httpx2.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def peak_rss_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0])
    return {"peak_kib": fields["VmHWM"], "rss_kib": fields["VmRSS"]}


def server_pid(marker: str) -> int:
    """The server process this harness started whose command line contains `marker`."""
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me and marker in cmdline:
            return int(proc.name)
    raise RuntimeError(f"no child process with {marker!r}")


class Bench:
    def __init__(self, calls: int, cold_runs: int, http_seconds: float) -> None:
        self.calls, self.cold_runs, self.http_seconds = calls, cold_runs, http_seconds
        self.tmp = Path(tempfile.mkdtemp(prefix="opportunity-bench-"))
        port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{port}"
        self.sandbox = subprocess.Popen(
            [*OURS, "sandbox", "--port", str(port), "--lc-burst", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"{self.sandbox_url}/_sandbox/state", self.sandbox)
        self.env = {
            **os.environ,
            "OPPORTUNITY_MCP_LOG_LEVEL": "WARNING",
            "PLAZBOT_BASE_URL": self.sandbox_url,
            "PLAZBOT_API_KEY": "sandbox-plazbot-key",
            "PLAZBOT_WORKSPACE_ID": "ws-sandbox",
            "LEADCONNECTOR_BASE_URL": self.sandbox_url,
            "LEADCONNECTOR_TOKEN": "sandbox-leadconnector-token",
            "LEADCONNECTOR_LOCATION_ID": "loc-sandbox",
            "LEADCONNECTOR_PIPELINE_ID": "pipe-sandbox",
            "OPPORTUNITY_MCP_JOURNAL": str(self.tmp / "journal.sqlite3"),
            "OPPORTUNITY_MCP_RATE_LIMIT": "1000000",
            "PYTHONPATH": str(ROOT),
            # Over HTTP ours checks a bearer token, as it does in production.
            "OPPORTUNITY_MCP_CONFIG": str(self.tmp / "config.toml"),
            "BENCH_TOKEN": BENCH_TOKEN,
        }
        (self.tmp / "config.toml").write_text('[tokens.bench]\nenv = "BENCH_TOKEN"\naccounts = ["*"]\n')
        self.n = 0

    def close(self) -> None:
        self.sandbox.terminate()
        self.sandbox.wait(timeout=10)

    def params(self, command: list[str]) -> StdioServerParameters:
        return StdioServerParameters(command=command[0], args=command[1:], env=self.env, cwd=str(ROOT))

    def unique(self) -> int:
        self.n += 1
        return self.n

    # -- cold start --------------------------------------------------------------------------------
    async def cold_start(self) -> dict[str, Any]:
        times: dict[str, list[float]] = {"ours": [], "floor": []}
        for _ in range(self.cold_runs):
            for name, command in (("ours", OURS), ("floor", FLOOR)):
                started = time.perf_counter()
                async with Client(self.params(command), mode="legacy") as client:
                    await client.list_tools()
                    times[name].append(time.perf_counter() - started)
        ours, floor = statistics.median(times["ours"]), statistics.median(times["floor"])
        return {"ours": summary(times["ours"]), "floor": summary(times["floor"]), "ratio": ours / floor}

    async def requests_per_call(self, ours: Client) -> dict[str, int]:
        """Upstream requests one call costs, as its journal row counts them: a create with ids; with
        names the first time (the lists are fetched) and again (the lists are kept; the contact is looked
        up); an update of a deal found by the customer's phone or email, on each CRM."""

        async def cost(tool: str, arguments: dict[str, Any]) -> int:
            result = await ours.call_tool(tool, arguments)
            assert not result.is_error, result.content
            recent = await ours.read_resource("journal://recent")
            line = recent.contents[0].text.splitlines()[0]  # type: ignore[union-attr]
            return int(line.rsplit(" ", 2)[-2])

        async def create(**extra: Any) -> int:
            n = self.unique()
            return await cost("create_opportunity", {"name": f"Requests {n}", "description": "d", "amount": n, **extra})

        # allowDuplicate: the same contact's earlier deals are not read back for the open-deal note.
        names: dict[str, Any] = {"contactPhone": "+51 912 345 678", "assigneeEmail": "juan@acme.com"}
        names |= {"stageName": "Propuesta", "allowDuplicate": True}
        found = {
            "ids": await create(contactId="contact-456", assignedComercialId="user-123", stageId="stage-proposal"),
            "names_first": await create(**names),
            "names_warm": await create(**names),
        }
        # One deal for a customer of each CRM, then a change to it by their email or phone alone.
        await create(contactEmail="marta@empresa.pe")
        n = self.unique()
        by_email = {"contactEmail": "marta@empresa.pe", "field": "amount", "value": n}
        found["update_by_contact_plazbot"] = await cost("update_opportunity_field", by_email)
        carlos = {"contactPhone": "+1 415 555 0100", "name": "Requests LC"}
        await cost("upsert_opportunity", carlos)
        found["upsert_by_phone_leadconnector"] = await cost("upsert_opportunity", {**carlos, "monetaryValue": n})
        # An update by id with a stage's name: the deal's pipeline is read once, for the name and the write.
        recent = await ours.read_resource("journal://recent")
        deal = recent.contents[0].text.split(" id ", 1)[1].split()[0]  # type: ignore[union-attr]
        await cost("upsert_opportunity", {"id": deal, "stageName": "Contacted"})  # the pipelines list, kept
        found["upsert_by_id_stage_name"] = await cost("upsert_opportunity", {"id": deal, "stageName": "New lead"})
        return found

    # -- per call ----------------------------------------------------------------------------------
    def ours_calls(self, created: list[str]) -> dict[str, Callable[[], tuple[str, dict[str, Any]]]]:
        def create() -> tuple[str, dict[str, Any]]:
            n = self.unique()
            return "create_opportunity", {"name": f"Bench deal {n}", "description": "Plan anual", "amount": n}

        def update() -> tuple[str, dict[str, Any]]:
            return "update_opportunity_field", {"opportunityId": created[-1], "field": "amount", "value": self.unique()}

        def upsert() -> tuple[str, dict[str, Any]]:
            n = self.unique()
            return "upsert_opportunity", {"name": f"Bench LC {n}", "monetaryValue": n}

        return {"create_opportunity": create, "update_opportunity_field": update, "upsert_opportunity": upsert}

    def direct(self, http: httpx2.AsyncClient, tool: str, created: list[str]) -> Callable[[], Awaitable[Any]]:
        plazbot = {"Authorization": "Bearer sandbox-plazbot-key", "x-workspace-id": "ws-sandbox"}
        lc = {"Authorization": "Bearer sandbox-leadconnector-token", "Version": "2021-07-28"}
        if tool == "create_opportunity":
            return lambda: http.post(
                "/api/opportunity",
                headers=plazbot,
                json={
                    "workspaceId": "ws-sandbox",
                    "name": f"Direct {self.unique()}",
                    "description": "Plan anual",
                    "amount": 1.0,
                },
            )
        if tool == "update_opportunity_field":
            return lambda: http.put(
                "/api/opportunity",
                headers=plazbot,
                params={"id": created[-1], "workspaceId": "ws-sandbox"},
                json={"paramToUpdate": "amount", "amount": float(self.unique())},
            )
        return lambda: http.post(
            "/opportunities/upsert",
            headers=lc,
            json={
                "pipelineId": "pipe-sandbox",
                "locationId": "loc-sandbox",
                "followers": [],
                "isRemoveAllFollowers": False,
                "followersActionType": "add",
                "name": f"Direct LC {self.unique()}",
                "monetaryValue": 1.0,
            },
        )

    async def per_call(self) -> dict[str, Any]:
        created: list[str] = []
        samples: dict[str, dict[str, list[float]]] = {}
        answer_tokens: dict[str, list[int]] = {}
        answer_chars: dict[str, list[int]] = {}
        memory: dict[str, Any] = {}
        async with (
            Client(self.params(OURS), mode="legacy") as ours,
            Client(self.params(FLOOR), mode="legacy") as floor,
            httpx2.AsyncClient(base_url=self.sandbox_url, timeout=15) as http,
        ):
            ours_list = await ours.list_tools()
            floor_list = await floor.list_tools()
            memory["after_start"] = {
                "ours": peak_rss_kib(server_pid("opportunity-mcp")),
                "floor": peak_rss_kib(server_pid("bench.floor_server")),
            }
            first = await ours.call_tool("create_opportunity", {"name": "seed", "description": "d", "amount": 1})
            assert first.structured_content is not None
            created.append(first.structured_content["id"])
            calls = self.ours_calls(created)
            directs = {tool: self.direct(http, tool, created) for tool in calls}

            async def floor_call() -> float:
                n = self.unique()
                started = time.perf_counter()
                result = await floor.call_tool("upsert_opportunity", {"name": f"Floor {n}", "monetaryValue": n})
                elapsed = time.perf_counter() - started
                assert not result.is_error
                return elapsed

            for round_ in range(self.calls + 50):  # the first 50 rounds warm up and are not kept
                for tool, make in calls.items():
                    name, arguments = make()
                    started = time.perf_counter()
                    result = await ours.call_tool(name, arguments)
                    ours_s = time.perf_counter() - started
                    assert not result.is_error, result.content
                    floor_s = await floor_call()
                    started = time.perf_counter()
                    response = await directs[tool]()
                    direct_s = time.perf_counter() - started
                    assert response.status_code == 200
                    if round_ >= 50:
                        box = samples.setdefault(tool, {"ours": [], "floor": [], "direct": []})
                        box["ours"].append(ours_s)
                        box["floor"].append(floor_s)
                        box["direct"].append(direct_s)
                        text = result.content[0].text  # type: ignore[union-attr]
                        answer_tokens.setdefault(tool, []).append(count(text))
                        answer_chars.setdefault(tool, []).append(len(text))
            memory["after_calls"] = {
                "ours": peak_rss_kib(server_pid("opportunity-mcp")),
                "floor": peak_rss_kib(server_pid("bench.floor_server")),
            }
            requests = await self.requests_per_call(ours)

        per_tool = {}
        for tool, box in samples.items():
            direct = statistics.median(box["direct"])
            ours_added = [o - direct for o in box["ours"]]
            floor_added = [f - direct for f in box["floor"]]
            per_tool[tool] = {
                "ours_ms": {k: v * 1000 if k != "n" else v for k, v in summary(box["ours"]).items()},
                "floor_ms": {k: v * 1000 if k != "n" else v for k, v in summary(box["floor"]).items()},
                "direct_ms": {k: v * 1000 if k != "n" else v for k, v in summary(box["direct"]).items()},
                "added_p50_ms": {"ours": pct(ours_added, 50) * 1000, "floor": pct(floor_added, 50) * 1000},
                "added_ratio_p50": pct(ours_added, 50) / pct(floor_added, 50),
                "answer_tokens_max": max(answer_tokens[tool]),
                "answer_chars_max": max(answer_chars[tool]),
            }

        def listing(result: Any) -> str:
            return json.dumps(result.model_dump(by_alias=True, exclude_none=True, mode="json"), separators=(",", ":"))

        tokens = {
            "tools_list": {
                "ours": count(listing(ours_list)),
                "floor": count(listing(floor_list)),
                "ours_chars": len(listing(ours_list)),
            }
        }
        return {"per_tool": per_tool, "tokens": tokens, "memory": memory, "requests": requests}

    # -- HTTP under load ---------------------------------------------------------------------------
    async def http_load(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        servers = {}
        procs = []
        for name, command in (("ours", [*OURS, "--transport", "http", "--port"]), ("floor", [*FLOOR, "http"])):
            port = free_port()
            proc = subprocess.Popen(
                [*command, str(port)],
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(proc)
            servers[name] = f"http://127.0.0.1:{port}/mcp"
            wait_http(f"http://127.0.0.1:{port}/", proc)
        try:
            for clients in (1, 8, 32):
                for name, url in servers.items():
                    results.setdefault(str(clients), {})[name] = await self.load(url, clients)
                for key in ("calls_per_s",):
                    row = results[str(clients)]
                    row["ratio_" + key] = row["ours"][key] / row["floor"][key]
                row["ratio_p99"] = row["ours"]["p99_ms"] / row["floor"]["p99_ms"]
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)
        return results

    async def load(self, url: str, clients: int) -> dict[str, float]:
        latencies: list[float] = []
        stop = time.monotonic() + self.http_seconds

        async def worker(http: httpx2.AsyncClient) -> None:
            while time.monotonic() < stop:
                n = self.unique()
                body = {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "tools/call",
                    "params": {"name": "upsert_opportunity", "arguments": {"name": f"Load {n}", "monetaryValue": n}},
                }
                started = time.perf_counter()
                response = await http.post(url, json=body, headers={**ACCEPT, "Authorization": f"Bearer {BENCH_TOKEN}"})
                if response.status_code == 200 and '"isError":false' in response.text:
                    latencies.append(time.perf_counter() - started)

        limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx2.AsyncClient(timeout=30, limits=limits) as http:
            started = time.monotonic()
            async with anyio.create_task_group() as group:
                for _ in range(clients):
                    group.start_soon(worker, http)
            elapsed = time.monotonic() - started
        return {
            "calls_per_s": len(latencies) / elapsed,
            "p50_ms": pct(latencies, 50) * 1000,
            "p99_ms": pct(latencies, 99) * 1000,
            "calls": len(latencies),
        }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def targets(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    per_tool, http = result["per_call"]["per_tool"], result["http"]
    memory = result["per_call"]["memory"]["after_calls"]
    rss_ratio = memory["ours"]["peak_kib"] / memory["floor"]["peak_kib"]
    rows = [
        ("cold start ≤ 1.10× floor", f"{result['cold_start']['ratio']:.2f}×", result["cold_start"]["ratio"] <= 1.10),
        ("peak RSS ≤ 1.1× floor", f"{rss_ratio:.2f}×", rss_ratio <= 1.1),
        (
            "tools/list ≤ 1,400 tokens (four tools)",
            str(result["per_call"]["tokens"]["tools_list"]["ours"]),
            result["per_call"]["tokens"]["tools_list"]["ours"] <= 1400,
        ),
    ]
    requests = result["per_call"]["requests"]
    rows.append(("create with ids: upstream requests = 1", str(requests["ids"]), requests["ids"] == 1))
    rows.append(
        (
            "create with phone, seller email, stage name, lists kept: requests = 2 (contact + write)",
            f"{requests['names_warm']} (first time: {requests['names_first']})",
            requests["names_warm"] == 2,
        )
    )
    read_once = requests.get("upsert_by_id_stage_name", 0)
    rows.append(
        (
            "upsert by id with a stage name, lists kept: requests = 2 (its pipeline, read once + write)",
            str(read_once),
            read_once == 2,
        )
    )
    for key, where in (("update_by_contact_plazbot", "Plazbot"), ("upsert_by_phone_leadconnector", "LeadConnector")):
        rows.append(
            (
                f"{where}: a change to the deal found by the customer's phone or email, lists kept: requests ≤ 3",
                str(requests[key]),
                requests[key] <= 3,
            )
        )
    for tool, row in per_tool.items():
        rows.append(
            (f"{tool}: added p50 ≤ 1.2× floor", f"{row['added_ratio_p50']:.2f}×", row["added_ratio_p50"] <= 1.2)
        )
        answer = f"{row['answer_tokens_max']} ({row['answer_chars_max']} characters)"
        rows.append((f"{tool}: answer ≤ 60 tokens", answer, row["answer_tokens_max"] <= 60))
    for clients in ("8", "32"):
        rows.append(
            (
                f"HTTP {clients} clients: calls/s ≥ 0.8× floor",
                f"{http[clients]['ratio_calls_per_s']:.2f}×",
                http[clients]["ratio_calls_per_s"] >= 0.8,
            )
        )
        rows.append(
            (
                f"HTTP {clients} clients: p99 ≤ 1.25× floor",
                f"{http[clients]['ratio_p99']:.2f}×",
                http[clients]["ratio_p99"] <= 1.25,
            )
        )
    return rows


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Measured {result['date']} on {m['cpu']} ({m['cpus']} cores), Python {m['python']}, mcp {m['mcp']} "
        f"(`make bench`; {result['settings']}).",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {value} | {'yes' if ok else '**no**'} |" for name, value, ok in targets(result)]
    cold = result["cold_start"]
    lines += [
        "",
        "| figure | opportunity-mcp | floor |",
        "|---|---|---|",
        f"| cold start, median (min–max) | {cold['ours']['p50'] * 1000:.0f} ms "
        f"({cold['ours']['min'] * 1000:.0f}–{cold['ours']['max'] * 1000:.0f}) | {cold['floor']['p50'] * 1000:.0f} ms "
        f"({cold['floor']['min'] * 1000:.0f}–{cold['floor']['max'] * 1000:.0f}) |",
    ]
    for tool, row in result["per_call"]["per_tool"].items():
        o, f, d = row["ours_ms"], row["floor_ms"], row["direct_ms"]
        lines.append(
            f"| {tool} p50 / p95 / p99 (direct upstream p50 {d['p50']:.2f} ms) | {o['p50']:.2f} / "
            f"{o['p95']:.2f} / {o['p99']:.2f} ms | {f['p50']:.2f} / {f['p95']:.2f} / {f['p99']:.2f} ms |"
        )
        lines.append(
            f"| {tool} added over direct, p50 | {row['added_p50_ms']['ours']:.2f} ms | "
            f"{row['added_p50_ms']['floor']:.2f} ms |"
        )
    tokens = result["per_call"]["tokens"]["tools_list"]
    lines.append(f"| tools/list tokens (characters) | {tokens['ours']} ({tokens['ours_chars']}) | {tokens['floor']} |")
    memory = result["per_call"]["memory"]
    for when in ("after_start", "after_calls"):
        lines.append(
            f"| peak RSS {when.replace('_', ' ')} | {memory[when]['ours']['peak_kib'] / 1024:.1f} MiB | "
            f"{memory[when]['floor']['peak_kib'] / 1024:.1f} MiB |"
        )
    for clients, row in result["http"].items():
        o, f = row["ours"], row["floor"]
        lines.append(
            f"| HTTP, {clients} clients: calls/s, p50 / p99 | {o['calls_per_s']:.0f}, {o['p50_ms']:.1f} / "
            f"{o['p99_ms']:.1f} ms | {f['calls_per_s']:.0f}, {f['p50_ms']:.1f} / {f['p99_ms']:.1f} ms |"
        )
    return "\n".join(lines) + "\n"


async def main(calls: int, cold_runs: int, http_seconds: float) -> dict[str, Any]:
    bench = Bench(calls, cold_runs, http_seconds)
    try:
        result: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": {
                "cpus": os.cpu_count(),
                "cpu": cpu_model(),
                "python": platform.python_version(),
                "mcp": __import__("importlib.metadata").metadata.version("mcp"),
            },
            "settings": f"{calls} calls per tool, {cold_runs} cold starts each, {http_seconds:g} s per HTTP load",
        }
        result["cold_start"] = await bench.cold_start()
        result["per_call"] = await bench.per_call()
        result["http"] = await bench.http_load()
        return result
    finally:
        bench.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Benchmark opportunity-mcp against the floor server.")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--cold-runs", type=int, default=20)
    parser.add_argument("--http-seconds", type=float, default=6.0)
    opts = parser.parse_args()
    outcome = anyio.run(main, opts.calls, opts.cold_runs, opts.http_seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(outcome, indent=2) + "\n")
    table = markdown(outcome)
    (RESULTS / "latest.md").write_text(table)
    publish("bench", table)
    sys.stdout.write(table)
