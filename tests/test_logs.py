"""Log lines: stderr only, and no configured secret in any of them, uvicorn's included."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import logging
from opportunity_mcp import logs
from opportunity_mcp.serve import uvicorn_config

logs.configure()
logs.scrub(("pk-canary-secret-0123456789",))
uvicorn_config(lambda *a: None, 1)  # configures uvicorn's loggers as serving does
logging.getLogger("uvicorn.error").warning("uvicorn saw pk-canary-secret-0123456789 in a request")
logging.getLogger("opportunity_mcp.crm").warning("we saw pk-canary-secret-0123456789 too")
"""


@pytest.mark.slow
def test_uvicorn_and_our_lines_pass_the_secret_scrubber() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert any("uvicorn.error: uvicorn saw [redacted] in a request" in line for line in lines), done.stderr
    assert any("we saw [redacted] too" in line for line in lines), done.stderr
    assert "pk-canary-secret" not in done.stderr
