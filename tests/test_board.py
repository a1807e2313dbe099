"""The sandbox board in headless Chromium (Debian's package): a tool call makes its card appear in
the right stage column, and a screenshot is taken."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp_types import CallToolResult

from tests.conftest import http_server, text_of
from tests.npm_tools import PLAYWRIGHT, ROOT, npm_install

pytestmark = pytest.mark.slow

COMMAND = str(Path(sys.executable).parent / "opportunity-mcp")
SCREENSHOT = ROOT / "tests" / "browser" / "board.png"


@pytest.fixture
def board_server() -> Iterator[str]:
    with http_server("--sandbox", "--no-auth") as (base, banner):
        assert f"sandbox board at {base}/" in banner, banner
        yield base


def test_board_data_follows_the_writes(board_server: str) -> None:
    data = httpx2.get(f"{board_server}/board.json", timeout=10).json()
    assert [p["title"] for p in data["pipelines"]] == [
        "Plazbot / Wabotify · workspace ws-sandbox",
        "LeadConnector · pipeline pipe-sandbox",
        "LeadConnector · pipeline pipe-renewals",
    ]
    assert data["writes"] == []
    page = httpx2.get(f"{board_server}/", timeout=10)
    assert page.status_code == 200 and "board.json" in page.text and "<script>" in page.text


async def _create(url: str, deal: str) -> CallToolResult:
    async with Client(url, mode="legacy") as client:
        return await client.call_tool(
            "create_opportunity",
            {
                "name": deal,
                "description": "Visto en el tablero",
                "amount": 4800,
                "stageId": "stage-proposal",
                "contactId": "contact-457",
                "assignedComercialId": "user-124",
            },
        )


def test_a_tool_call_makes_its_card_appear(board_server: str, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is needed (make test installs it when run as root)"
    npm_install(tmp_path, PLAYWRIGHT)
    script = tmp_path / "board.mjs"
    shutil.copy(ROOT / "tests" / "browser" / "board.mjs", script)
    node = shutil.which("node")
    assert node
    deal = "Tablero Empresa Z"
    browser = subprocess.Popen(
        [node, str(script), f"{board_server}/", str(SCREENSHOT), deal, chromium],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert browser.stdin is not None and browser.stdout is not None
    try:
        assert browser.stdout.readline().strip() == "ready 0"  # the page is up and the deal is not there
        created = anyio.run(_create, f"{board_server}/mcp", deal)
        assert not created.is_error, text_of(created)
        browser.stdin.write("go\n")
        browser.stdin.close()
        assert browser.stdout.readline().strip() == "seen PROPUESTA (1)"
        assert browser.wait(timeout=30) == 0
    finally:
        if browser.poll() is None:
            browser.kill()
        if browser.returncode:
            print(browser.stderr.read() if browser.stderr else "")
        for pipe in (browser.stdout, browser.stderr):
            if pipe is not None:
                pipe.close()
    assert SCREENSHOT.stat().st_size > 10_000
