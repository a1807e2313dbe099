"""A real client: the MCP Inspector CLI lists the tools and calls each one, over stdio and over
streamable HTTP, with the server configured the way users configure it (environment variables)
against a running sandbox CRM."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opportunity_mcp.sandbox import LC_LOCATION, LC_PIPELINE, PLAZBOT_WORKSPACE, SandboxServer, SandboxState
from tests.conftest import CANARY_KEY, CANARY_TOKEN, http_server
from tests.npm_tools import INSPECTOR, npx

pytestmark = pytest.mark.slow

COMMAND = str(Path(sys.executable).parent / "opportunity-mcp")


@pytest.fixture
def user_env(sandbox_server: SandboxServer, sandbox: SandboxState, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PLAZBOT_BASE_URL": sandbox_server.url,
        "PLAZBOT_API_KEY": CANARY_KEY,
        "PLAZBOT_WORKSPACE_ID": PLAZBOT_WORKSPACE,
        "LEADCONNECTOR_BASE_URL": sandbox_server.url,
        "LEADCONNECTOR_TOKEN": CANARY_TOKEN,
        "LEADCONNECTOR_LOCATION_ID": LC_LOCATION,
        "LEADCONNECTOR_PIPELINE_ID": LC_PIPELINE,
        "OPPORTUNITY_MCP_JOURNAL": str(tmp_path / "journal.sqlite3"),
    }


def _inspect(target: list[str], method: str, *extra: str) -> Any:
    done = npx(INSPECTOR, "--cli", *target, "--method", method, *extra, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout
    return json.loads(output[output.index("{") :])


def sandbox_workspace(sandbox: SandboxState) -> str:
    return str(next(iter(sandbox.plazbot.values()))["workspaceId"])


def _exercise(target: list[str], sandbox: SandboxState) -> None:
    listed = _inspect(target, "tools/list")
    assert [t["name"] for t in listed["tools"]] == [
        "create_opportunity",
        "update_opportunity_field",
        "upsert_opportunity",
        "find_opportunities",
    ]
    created = _inspect(
        target,
        "tools/call",
        "--tool-name",
        "create_opportunity",
        "--tool-arg",
        "name=Inspector deal",
        "--tool-arg",
        "description=Plan anual",
        "--tool-arg",
        "amount=1200.5",
    )
    assert created["isError"] is False and created["structuredContent"]["action"] == "created"
    opp_id = created["structuredContent"]["id"]
    updated = _inspect(
        target,
        "tools/call",
        "--tool-name",
        "update_opportunity_field",
        "--tool-arg",
        f"opportunityId={opp_id}",
        "--tool-arg",
        "field=stageId",
        "--tool-arg",
        "value=stage-won",
    )
    assert updated["isError"] is False, updated
    upserted = _inspect(
        target,
        "tools/call",
        "--tool-name",
        "upsert_opportunity",
        "--tool-arg",
        "name=LC deal",
        "--tool-arg",
        "status=won",
    )
    assert upserted["isError"] is False and upserted["structuredContent"]["status"] == "won"
    assert sandbox.plazbot[opp_id]["stageId"] == "stage-won"
    found = _inspect(
        target,
        "tools/call",
        "--tool-name",
        "find_opportunities",
        "--tool-arg",
        "name=inspector DEAL",
        "--tool-arg",
        f"accountId={sandbox_workspace(sandbox)}",
    )
    assert found["isError"] is False and [d["id"] for d in found["structuredContent"]["deals"]] == [opp_id]
    for answer in (created, updated, upserted, found):
        assert CANARY_KEY not in json.dumps(answer) and CANARY_TOKEN not in json.dumps(answer)


def test_inspector_over_stdio(user_env: dict[str, str], sandbox: SandboxState) -> None:
    # The Inspector starts the server with a filtered environment, as hosts do: pass ours with -e.
    passed = [
        arg
        for key, value in user_env.items()
        if key.startswith(("PLAZBOT_", "LEADCONNECTOR_", "OPPORTUNITY_"))
        for arg in ("-e", f"{key}={value}")
    ]
    _exercise([*passed, COMMAND], sandbox)


INSPECTOR_TOKEN = "omcp_inspector-token-0123456789abcdef"


@pytest.fixture
def http_url(user_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "config.toml"
    config.write_text('[tokens.inspector]\nenv = "INSPECTOR_TOKEN"\naccounts = ["plazbot", "leadconnector"]\n')
    env = {**user_env, "OPPORTUNITY_MCP_CONFIG": str(config), "INSPECTOR_TOKEN": INSPECTOR_TOKEN}
    with http_server(env=env) as (base, _):
        yield f"{base}/mcp"


def test_inspector_over_http(http_url: str, sandbox: SandboxState) -> None:
    _exercise([http_url, "--transport", "http", "--header", f"Authorization: Bearer {INSPECTOR_TOKEN}"], sandbox)
