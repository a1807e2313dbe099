"""A small fleet on loopback for the chaos and burst runs: one standalone sandbox CRM process and
opportunity-mcp replicas over HTTP, each with its own log file, sharing one bearer token (from a
config file) and whatever journal the caller names. Everything stops when the caller's stack closes."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.run import OURS, free_port, wait_http


@dataclass
class Replica:
    port: int
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        """Start (or start again, on the same port) and wait until /healthz answers."""
        with self.log.open("ab") as log:
            argv = [*OURS, "--transport", "http", "--port", str(self.port)]
            self.proc = subprocess.Popen(
                argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
            )
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc)

    def stop(self) -> None:
        """SIGTERM: in-flight writes finish, the journal closes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@dataclass
class Fleet:
    sandbox: str  # the sandbox CRM's base URL
    token: str
    replicas: list[Replica]

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()

    def logs(self) -> str:
        return "".join(r.log.read_text(errors="replace") for r in self.replicas)


def start_fleet(stack: ExitStack, accounts: Callable[[str], dict[str, str]], replicas: int = 2) -> Fleet:
    """A sandbox and `replicas` servers; `accounts(sandbox_url)` gives their CRM and journal variables."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="opportunity-fleet-")))
    token = "omcp_" + secrets.token_urlsafe(24)
    (tmp / "config.toml").write_text('[tokens.fleet]\nenv = "FLEET_TOKEN"\naccounts = ["*"]\n')
    port = free_port()
    quiet = subprocess.DEVNULL
    crm = subprocess.Popen([*OURS, "sandbox", "--port", str(port)], stdin=quiet, stdout=quiet, stderr=quiet)

    def stop_crm() -> None:
        crm.terminate()
        crm.wait(timeout=20)

    stack.callback(stop_crm)
    sandbox = f"http://127.0.0.1:{port}"
    wait_http(f"{sandbox}/_sandbox/state", crm)
    env = {**os.environ, "OPPORTUNITY_MCP_CONFIG": str(tmp / "config.toml"), "FLEET_TOKEN": token, **accounts(sandbox)}
    fleet = Fleet(sandbox, token, [Replica(free_port(), tmp / f"replica-{n}.log", env) for n in range(1, replicas + 1)])
    stack.callback(fleet.stop)
    for replica in fleet.replicas:
        replica.start()
    return fleet
