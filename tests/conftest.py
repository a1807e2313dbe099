"""Shared fixtures: one sandbox CRM per test session on real loopback HTTP, reset before every test,
and MCP clients talking to the server through the protocol (in memory)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult
from pydantic import SecretStr

from opportunity_mcp.app import build_server
from opportunity_mcp.config import Account, ServerConfig
from opportunity_mcp.sandbox import (
    PLAZBOT_EMAIL,
    PLAZBOT_PASSWORD,
    PLAZBOT_WORKSPACE,
    SandboxServer,
    SandboxState,
    sandbox_config,
)

# Secrets that look like real ones, so a leak would be visible in any text that carries it.
CANARY_KEY = "pk-canary-6b1f0e2d9c8a7b6f5e4d3c2b1a0f9e8d"
CANARY_TOKEN = "pit-canary-3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(plazbot_key=CANARY_KEY, leadconnector_token=CANARY_TOKEN)) as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """One throwaway PostgreSQL server for the whole run; tests take a fresh database each."""
    from tests.postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def journal_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a journal lives, once per backend: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    from tests.postgres import fresh_database

    return fresh_database(request.getfixturevalue("postgres"))


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxState:
    sandbox_server.state.reset()
    return sandbox_server.state


def canary_config(url: str, **changes: Any) -> ServerConfig:
    """The sandbox configuration with canary secrets, optionally changed (e.g. http_timeout)."""
    from pydantic import SecretStr

    base = sandbox_config(url)
    canary = {"plazbot": CANARY_KEY, "leadconnector": CANARY_TOKEN}
    accounts = tuple(replace(a, secret=SecretStr(canary[a.family])) for a in base.accounts)
    return replace(base, accounts=accounts, **changes)


@pytest.fixture
def config(sandbox_server: SandboxServer, sandbox: SandboxState, tmp_path: Path) -> ServerConfig:
    return canary_config(sandbox_server.url, http_timeout=2.0, journal=str(tmp_path / "journal.sqlite3"))


@pytest.fixture
async def client(config: ServerConfig) -> AsyncIterator[Client]:
    async with Client(build_server(config), mode="legacy") as connected:
        yield connected


def text_of(result: CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert block.type == "text"
    return block.text


def assert_clean(text: str) -> None:
    """Nothing an agent reads may carry a secret, a stack trace or a raw upstream body."""
    for forbidden in (CANARY_KEY, CANARY_TOKEN, "Traceback", "Bearer", "<html", "statusCode", '{"'):
        assert forbidden not in text, f"{forbidden!r} leaked into: {text}"


COMMAND = str(Path(sys.executable).parent / "opportunity-mcp")


@contextmanager
def http_server(*args: str, env: dict[str, str] | None = None, host: str = "127.0.0.1") -> Iterator[tuple[str, str]]:
    """Run `opportunity-mcp --transport http` as a user would, on a free port; yield the base URL
    (http://127.0.0.1:PORT) and the lines it printed on stderr up to its "listening on" line. Stops it
    afterwards and checks that nothing was written to stdout."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    with subprocess.Popen(
        [COMMAND, *args, "--transport", "http", "--host", host, "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:  # closes its pipes when done
        assert proc.stderr is not None and proc.stdout is not None
        deadline, banner = time.monotonic() + 30, ""
        while "listening on" not in banner and time.monotonic() < deadline and proc.poll() is None:
            banner += proc.stderr.readline()
        try:
            assert "listening on" in banner, banner
            yield f"http://{host}:{port}", banner
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            assert proc.stdout.read() == ""


def bearer(banner: str) -> dict[str, str]:
    """The Authorization header for the token a sandbox server printed for its run."""
    found = re.search(r"sandbox bearer token for this run \(every account\): (\S+)", banner)
    assert found, banner
    return {"Authorization": f"Bearer {found.group(1)}"}


@asynccontextmanager
async def authorized_client(url: str, headers: dict[str, str], mode: str = "legacy") -> AsyncIterator[Client]:
    """An MCP client over streamable HTTP that sends `headers` (a bearer token) with every request;
    its HTTP client is closed afterwards (the MCP client leaves a client it was given open)."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


LOGIN_SOURCE = "PLAZBOT_EMAIL and PLAZBOT_PASSWORD"


def login_config(config: ServerConfig, password: str = PLAZBOT_PASSWORD) -> ServerConfig:
    """The sandbox config with one Plazbot account that logs in with email and password."""
    plazbot = config.first("plazbot")
    assert plazbot is not None
    account = Account(
        "plazbot",
        "plazbot",
        plazbot.base_url,
        SecretStr(password),
        PLAZBOT_WORKSPACE,
        options=(("email", PLAZBOT_EMAIL),),
        secret_source=LOGIN_SOURCE,
    )
    return replace(config, accounts=(account,))
