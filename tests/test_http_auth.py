"""Bearer tokens over HTTP, through the HTTP app in memory (and once against a real process): 401 with
WWW-Authenticate without a good token, and a token that may write to one account refused (nothing
sent) when it names another."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx2
import pytest

from opportunity_mcp.config import ServerConfig, load_config
from opportunity_mcp.http_app import HttpOptions
from opportunity_mcp.sandbox import LC_LOCATION, LC_PIPELINE, PLAZBOT_WORKSPACE, SandboxServer, SandboxState
from tests.asgi import PING, mcp_client, raw, serving
from tests.conftest import CANARY_KEY, CANARY_TOKEN, COMMAND, http_server, text_of

pytestmark = pytest.mark.anyio
FLEET = "omcp_fleet-token-for-plazbot-only-0123"
OPS = "omcp_ops-token-for-every-account-0123"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}


@pytest.fixture
def env(sandbox_server: SandboxServer, sandbox: SandboxState, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(
        '[accounts.acme]\ncrm = "plazbot"\nworkspace_id = "ws-sandbox-2"\nsecret_env = "ACME_KEY"\n'
        f'base_url = "{sandbox_server.url}"\n\n'
        '[tokens.fleet]\nenv = "FLEET_TOKEN"\naccounts = ["plazbot"]\n\n'
        '[tokens.ops]\nenv = "OPS_TOKEN"\naccounts = ["*"]\n'
    )
    return {
        **os.environ,
        "PLAZBOT_BASE_URL": sandbox_server.url,
        "PLAZBOT_API_KEY": CANARY_KEY,
        "PLAZBOT_WORKSPACE_ID": PLAZBOT_WORKSPACE,
        "ACME_KEY": CANARY_KEY,
        "LEADCONNECTOR_BASE_URL": sandbox_server.url,
        "LEADCONNECTOR_TOKEN": CANARY_TOKEN,
        "LEADCONNECTOR_LOCATION_ID": LC_LOCATION,
        "LEADCONNECTOR_PIPELINE_ID": LC_PIPELINE,
        "OPPORTUNITY_MCP_CONFIG": str(config),
        "FLEET_TOKEN": FLEET,
        "OPS_TOKEN": OPS,
        "OPPORTUNITY_MCP_JOURNAL": str(tmp_path / "journal.sqlite3"),
    }


@pytest.fixture
def app_config(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ServerConfig:
    """The config a process would load from that environment and file."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_config()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token_or_a_wrong_one_gets_401_with_www_authenticate(app_config: ServerConfig) -> None:
    async with serving(app_config, HttpOptions(grants=app_config.tokens)) as transport, raw(transport) as http:
        for auth in ({}, {"Authorization": "Bearer omcp_not-a-token"}, {"Authorization": f"Basic {FLEET}"}):
            answer = await http.post("/mcp", headers={**HEADERS, **auth}, content=PING)
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
            assert FLEET not in answer.text
        good = await http.post("/mcp", headers={**HEADERS, **_bearer(FLEET)}, content=PING)
    assert good.status_code == 200


async def test_a_token_writes_only_where_it_is_allowed(app_config: ServerConfig, sandbox: SandboxState) -> None:
    async with serving(app_config, HttpOptions(grants=app_config.tokens)) as transport:
        async with mcp_client(transport, _bearer(FLEET)) as fleet:
            allowed = await fleet.call_tool("create_opportunity", DEAL)  # its one workspace: no need to name it
            other = await fleet.call_tool("create_opportunity", {**DEAL, "workspaceId": "ws-sandbox-2"})
            upsert = await fleet.call_tool("upsert_opportunity", {"name": "x"})
        assert not allowed.is_error and allowed.structured_content
        assert allowed.structured_content["account"] == PLAZBOT_WORKSPACE
        assert other.is_error
        assert text_of(other).endswith(
            "Not allowed: workspaceId: not a workspace this connection may write to (allowed: ws-sandbox); "
            "nothing was sent."
        )
        assert upsert.is_error and "may not write to any location of this CRM" in text_of(upsert)
        assert len(sandbox.requests_to("plazbot.create")) == 1 and sandbox.requests_to("lc.upsert") == []

        async with mcp_client(transport, _bearer(OPS)) as ops:
            ambiguous = await ops.call_tool("create_opportunity", DEAL)
            named = await ops.call_tool("create_opportunity", {**DEAL, "workspaceId": "ws-sandbox-2"})
            upserted = await ops.call_tool("upsert_opportunity", {"name": "x"})
        assert ambiguous.is_error and "workspaceId: required, since you may write to several" in text_of(ambiguous)
        assert named.structured_content and named.structured_content["account"] == "ws-sandbox-2"
        assert not upserted.is_error

        # The journal resource shows a token the writes of its own accounts only.
        async with mcp_client(transport, _bearer(FLEET)) as fleet:
            seen = (await fleet.read_resource("journal://recent")).contents[0].text  # type: ignore[union-attr]
        async with mcp_client(transport, _bearer(OPS)) as ops:
            everything = (await ops.read_resource("journal://recent")).contents[0].text  # type: ignore[union-attr]
    assert "create_opportunity ws-sandbox done" in seen and "ws-sandbox-2" not in seen and "loc-sandbox" not in seen
    assert "ws-sandbox-2" in everything and "loc-sandbox" in everything


@pytest.mark.slow
def test_a_real_process_asks_for_the_token_it_was_given(env: dict[str, str]) -> None:
    """End to end: the command serves HTTP with the config file's tokens."""
    with http_server(env=env) as (base, banner):
        assert "bearer tokens (2)" in banner and FLEET not in banner and OPS not in banner
        refused = httpx2.post(f"{base}/mcp", headers=HEADERS, content=PING, timeout=10)
        good = httpx2.post(f"{base}/mcp", headers={**HEADERS, **_bearer(OPS)}, content=PING, timeout=10)
    assert (refused.status_code, good.status_code) == (401, 200)


@pytest.mark.slow
def test_no_auth_is_for_loopback_only(env: dict[str, str]) -> None:
    done = subprocess.run(
        [COMMAND, "--transport", "http", "--host", "0.0.0.0", "--port", "0", "--no-auth"],
        env={**env, "OPPORTUNITY_MCP_ALLOWED_HOSTS": "bots.internal"},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2 and "--no-auth is for loopback only" in done.stderr


@pytest.mark.slow
def test_http_without_tokens_will_not_start(env: dict[str, str]) -> None:
    done = subprocess.run(
        [COMMAND, "--transport", "http", "--port", "0"],
        env={**env, "OPPORTUNITY_MCP_CONFIG": ""},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2 and "HTTP clients need bearer tokens" in done.stderr


async def test_another_accounts_burst_does_not_hide_yours_in_the_journal(
    app_config: ServerConfig, sandbox: SandboxState
) -> None:
    from opportunity_mcp.journal import Finish, open_journal

    journal = open_journal(app_config.journal)
    try:
        async with serving(app_config, HttpOptions(grants=app_config.tokens), journal=journal) as transport:
            async with mcp_client(transport, _bearer(FLEET)) as fleet:
                mine = await fleet.call_tool("create_opportunity", DEAL)
            assert not mine.is_error
            for i in range(250):  # another account's burst, newer than the fleet's one write
                claim = await journal.claim(
                    tool="create_opportunity", account="ws-sandbox-2", fp=f"b{i}", args_fp="a", key=None, guard=False,
                    window=600,
                )  # fmt: skip
                assert claim.row_id is not None
                await journal.finish(claim.row_id, Finish("done", 200, f"opp-b{i}"))
            async with mcp_client(transport, _bearer(FLEET)) as fleet:
                seen = (await fleet.read_resource("journal://recent")).contents[0].text  # type: ignore[union-attr]
    finally:
        journal.close()
    assert seen.splitlines() and "create_opportunity ws-sandbox done" in seen and "ws-sandbox-2" not in seen
