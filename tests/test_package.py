"""The package as a user installs it: wheel and sdist built from a clean clone, both passing `twine
check`, the wheel installed in a fresh virtual environment, and the installed command serving the
tools and the prompts (which travel inside the wheel) over stdio."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from opportunity_mcp import __version__
from opportunity_mcp.prompts import load
from opportunity_mcp.tools import TOOLS

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheel and sdist of the committed tree, built as a release would build them."""
    work = tmp_path_factory.mktemp("package")
    _run("git", "clone", "--quiet", "--no-local", ROOT, work / "clone")
    _run(sys.executable, "-m", "build", "--outdir", work / "dist", work / "clone")
    return work / "dist"


def test_both_artifacts_carry_the_prompts_and_pass_twine_check(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    prompts = sorted(f"{p.name}.txt" for p in load())
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("opportunity_mcp/prompt_files/")) == prompts
    assert "opportunity_mcp/py.typed" in names
    assert not [n for n in names if n.startswith(("server/", "tests/", "bench/"))]
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert sorted(m.rsplit("/", 1)[1] for m in members if "/prompts/" in m) == prompts


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed (uv makes it quickly; the wheel's
    dependencies come from the package index)."""
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path_factory.mktemp("installed") / "venv"
    _run(BIN / "uv", "venv", "--quiet", "--python", sys.executable, venv)
    _run(BIN / "uv", "pip", "install", "--quiet", "--python", venv / "bin" / "python", wheel)
    return venv


def test_python_dash_m_runs_the_installed_package(venv: Path) -> None:
    version = _run(venv / "bin" / "python", "-m", "opportunity_mcp", "--version").strip()
    assert version == f"opportunity-mcp {__version__}"
    where = _run(venv / "bin" / "python", "-c", "import opportunity_mcp; print(opportunity_mcp.__file__)")
    assert where.startswith(str(venv))  # the installed copy, not this checkout


async def test_the_installed_command_lists_every_tool_and_prompt(venv: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAZBOT_", "LEADCONNECTOR_", "OPPORTUNITY_"))}
    server = StdioServerParameters(
        command=str(venv / "bin" / "opportunity-mcp"), args=["--sandbox"], env=env, cwd=str(tmp_path)
    )
    async with Client(server, mode="legacy") as client:
        tools = (await client.list_tools()).tools
        prompts = (await client.list_prompts()).prompts
    assert [t.name for t in tools] == [spec.name for spec in TOOLS]
    assert [p.name for p in prompts] == [p.name for p in load()]
    assert len(prompts) == 3
