"""LangChain's MCP adapters (`langchain-mcp-adapters`, pinned in tests/clients/langchain.txt) against
the server over HTTP with a bearer token, and over stdio. They pin mcp<2, so they run in their own
environment (`.venv-langchain`) as a separate process: `tests/clients/langchain_probe.py`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from opportunity_mcp.tools import TOOLS
from tests.clients.environment import langchain_python
from tests.conftest import COMMAND, bearer, http_server

pytestmark = pytest.mark.slow
PROBE = Path(__file__).parent / "clients" / "langchain_probe.py"


def _text(answer: dict[str, Any]) -> str:
    [block] = answer["content"]
    return str(block["text"])


def test_langchain_agent_tools_over_http() -> None:
    python = langchain_python()
    with http_server("--sandbox") as (base, banner):
        token = bearer(banner)["Authorization"].removeprefix("Bearer ")
        probe = subprocess.run(
            [str(python), str(PROBE), f"{base}/mcp", token, COMMAND], capture_output=True, text=True, timeout=120
        )
    assert probe.returncode == 0, probe.stderr
    out = json.loads(probe.stdout)
    assert out["tools"] == sorted(spec.name for spec in TOOLS)
    # LangChain hands the model our schemas as they are: flat, with the required arguments.
    assert out["schemas"]["create_opportunity"]["required"] == ["name", "description", "amount"]

    # The model sees `content` only; it carries the outcome and the ids. The artifact keeps the envelope.
    create = out["create"]
    assert create["status"] == "success"
    assert re.match(r"Created opportunity OPP-\d{4}-\d{4} 'Plan anual' \(id \w+\)", _text(create)), _text(create)
    assert create["artifact"]["structured_content"]["action"] == "created"

    # An error is marked as one (status "error") and reads as one from its first words.
    bad = out["bad_upsert"]
    assert bad["status"] == "error"
    assert _text(bad).startswith("Error executing tool upsert_opportunity: Invalid arguments: name: required"), bad

    # The interceptor's Idempotency-Key header: two calls, two sessions, one opportunity.
    first, second = out["keyed"]
    assert _text(first).startswith("Created opportunity OPP-")
    assert _text(second).startswith("Already done, nothing sent: opportunity OPP-")
    assert "this idempotencyKey was used" in _text(second)
    assert first["artifact"]["structured_content"]["id"] == second["artifact"]["structured_content"]["id"]

    # Over stdio too: the console script with its own sandbox.
    assert _text(out["stdio_create"]).startswith("Created opportunity OPP-"), out["stdio_create"]
