"""The separate environment a client library runs in when it cannot share the server's (LangChain's
adapters pin mcp<2). Built with uv on first use and rebuilt when its pins change; `make test` builds it
up front (`python -m tests.clients.environment`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PINS = Path(__file__).with_name("langchain.txt")
VENV = ROOT / ".venv-langchain"
UV = str(Path(sys.executable).parent / "uv")


def langchain_python() -> Path:
    """The Python of `.venv-langchain`, with the pinned client installed."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".pins"
    pins = PINS.read_text()
    if not python.exists() or not stamp.exists() or stamp.read_text() != pins:
        subprocess.run([UV, "venv", "--quiet", "--clear", "--python", sys.executable, str(VENV)], check=True)
        subprocess.run([UV, "pip", "install", "--quiet", "--python", str(python), "-r", str(PINS)], check=True)
        stamp.write_text(pins)
    return python


if __name__ == "__main__":
    print(langchain_python())
