"""The sandbox board in headless Chromium (Debian's package): a tool call makes its card appear in
the right stage column, and a screenshot is taken."""

from __future__ import annotations

import re
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
        "LeadConnector · pipeline Ventas",
        "LeadConnector · pipeline Renovaciones",
    ]
    assert data["writes"] == []
    page = httpx2.get(f"{board_server}/", timeout=10)
    # Rendered on the server: the whole board is in the page before any script runs.
    assert page.status_code == 200 and "<script>" in page.text
    for text in ("LeadConnector · pipeline Ventas", "Proposal sent", "no writes yet", "Maria Lopez", "juan@acme.com"):
        assert text in page.text, text


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
        assert browser.stdout.readline().strip() == "seen PROPUESTA (1) width 1280"  # no horizontal scrollbar
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


def test_a_plain_headless_screenshot_shows_the_whole_board(board_server: str, tmp_path: Path) -> None:
    """No script, no waiting: Chromium's own --dump-dom and --screenshot of the page as served."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is needed (make test installs it when run as root)"
    created = anyio.run(_create, f"{board_server}/mcp", "Tablero sin script")
    assert not created.is_error, text_of(created)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,900",
    ]
    page = f"{board_server}/"
    dom = subprocess.run([chromium, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for text in ("Tablero sin script", "4,800.00", "Recent writes", "create", "done", "Maria Lopez", "Ana Ruiz"):
        assert text in dom.stdout, text
    shot = tmp_path / "board.png"
    taken = subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", f"{board_server}/"], capture_output=True, text=True, timeout=120
    )
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]


def test_a_failed_write_says_why_on_the_board() -> None:
    with http_server("--sandbox", "--no-auth") as (base, banner):
        found = re.search(r"the sandbox CRM at (http://127\.0\.0\.1:\d+)", banner)
        assert found
        fault = {"route": "plazbot.create", "status": 422, "body": '{"message": "amount too large"}'}
        assert httpx2.post(f"{found.group(1)}/_sandbox/faults", json=fault, timeout=10).status_code == 200
        refused = anyio.run(_create, f"{base}/mcp", "Rechazado")
        assert refused.is_error
        page = httpx2.get(f"{base}/", timeout=10).text
    assert '<td class="failed">failed<small>the CRM answered HTTP 422</small></td>' in page
