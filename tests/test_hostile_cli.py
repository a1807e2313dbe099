"""Hostile and careless use of the command line and the files it makes: strict subcommands, settings
checked with --sandbox too, plain config errors, scratch files gone on SIGTERM, owner-only journal
files, views filtered before their limit, and a scrubber that masks secrets but not common words."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from opportunity_mcp.config import ConfigError, load_config
from opportunity_mcp.journal import Finish, SqliteJournal
from opportunity_mcp.scrub import Secrets
from tests.conftest import COMMAND, http_server


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.slow
def test_every_subcommand_has_help_and_refuses_unknown_arguments() -> None:
    for command in ("token", "journal", "sandbox"):
        helped = _run(command, "--help")
        assert helped.returncode == 0 and f"usage: opportunity-mcp {command}" in helped.stdout
        assert "omcp_" not in helped.stdout  # --help mints nothing
        bogus = _run(command, "--bogus")
        assert bogus.returncode == 2 and "unrecognized arguments: --bogus" in bogus.stderr
        assert bogus.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "args", "said"),
    [
        ({"OPPORTUNITY_MCP_LOG_LEVEL": "LOUD"}, (), "OPPORTUNITY_MCP_LOG_LEVEL: must be one of DEBUG, INFO"),
        ({"OPPORTUNITY_MCP_HTTP_TIMEOUT": "abc"}, (), "OPPORTUNITY_MCP_HTTP_TIMEOUT: must be a number"),
        ({}, ("--config", "/nonexistent/opportunity.toml"), "cannot read the config file"),
    ],
)
def test_the_sandbox_checks_settings_as_a_real_start_does(
    env: dict[str, str], args: tuple[str, ...], said: str
) -> None:
    done = _run("--sandbox", *args, env=env)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr


ACCOUNT = '[accounts.a]\ncrm = "plazbot"\nsecret_env = "K"\nworkspace_id = "w"\n'


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ('[accounts.a]\ncrm = "plazbot"\nsecret = "pk-live"\nworkspace_id = "w"\n', "secrets never go in this file"),
        ('[tokens.t]\nsha256 = "abc"\naccounts = ["*"]\n', "tokens.t.sha256: must be the token's SHA-256 as 64"),
        ('[tokens.t]\nenv = "my token"\naccounts = ["*"]\n', "tokens.t.env: must be the name of an environment"),
        (f'{ACCOUNT}number_format = "1 234"\n', "accounts.a.number_format: must be '1.234,56' or '1,234.56'"),
        (f'{ACCOUNT}default_country = "Peru"\n', "accounts.a.default_country: must be a two-letter ISO country"),
    ],
)
def test_config_errors_are_one_plain_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, said: str
) -> None:
    monkeypatch.setenv("K", "pk-sandbox-0123456789")
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as refused:
        load_config(str(path))
    assert said in str(refused.value)
    assert "Field required" not in str(refused.value) and "should match pattern" not in str(refused.value)


@pytest.mark.parametrize(
    "url", ["https://api.plazbot.com/v1", "https://api.plazbot.com/?x=1", "https://api.plazbot.com#f", "https://"]
)
def test_a_base_url_is_an_origin_only(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("PLAZBOT_API_KEY", "pk-sandbox-0123456789")
    monkeypatch.setenv("PLAZBOT_WORKSPACE_ID", "ws-1")
    monkeypatch.setenv("PLAZBOT_BASE_URL", url)
    with pytest.raises(ConfigError, match=r"PLAZBOT_BASE_URL: must (be|start)"):
        load_config()


@pytest.mark.slow
def test_sigterm_removes_the_sandbox_scratch_journal() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPPORTUNITY_MCP_JOURNAL"}
    with http_server("--sandbox", "--no-auth", env=env) as (_, banner):  # stopped with SIGTERM
        found = re.search(r"journal (\S+journal\.sqlite3)", banner)
        assert found, banner
        folder = Path(found.group(1)).parent
        assert folder.is_dir()
    deadline = time.monotonic() + 10
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not folder.exists()


@pytest.mark.slow
def test_the_journal_is_owner_only_and_the_command_filters_before_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "new" / "journal.sqlite3"
    os.umask(0o022)
    journal = SqliteJournal(path)

    async def fill() -> None:
        for account, count in (("ws-mine", 2), ("ws-busy", 30)):
            for i in range(count):
                fp = f"{account}{i}"
                claim = await journal.claim(
                    tool="create_opportunity", account=account, fp=fp, args_fp="a", key=None, guard=False, window=600
                )
                assert claim.row_id is not None
                await journal.finish(claim.row_id, Finish("done", 200, f"opp-{account}-{i}"))

    anyio.run(fill)
    journal.close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if name.exists():
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
    shown = _run("journal", "--limit", "5", "--account", "ws-mine", env={"OPPORTUNITY_MCP_JOURNAL": str(path)})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()[1:]
    assert len(lines) == 2 and all("ws-mine" in line for line in lines)


def test_the_scrubber_masks_secrets_not_words() -> None:
    secrets = Secrets()
    secrets.add("postgres", "x", "pk-live-0123456789abcdef")
    said = secrets.scrub(
        "needs psycopg: pip install 'opportunity-mcp[postgresql]'; at postgresql://postgres:postgres@db:5432/x "
        "?password=hunter2 with pk-live-0123456789abcdef and Authorization: Bearer eyJabc.def"
    )
    assert "opportunity-mcp[postgresql]" in said  # a short password is no reason to mask a word
    assert "postgres:postgres@" not in said and "postgresql://postgres:[redacted]@db" in said
    assert "hunter2" not in said and "pk-live" not in said and "eyJabc" not in said


@pytest.mark.slow
def test_a_journal_url_error_keeps_its_words() -> None:
    env = {"OPPORTUNITY_MCP_JOURNAL": "postgresql://postgres:postgres@127.0.0.1:1/x?connect_timeout=1"}
    done = _run("--sandbox", env=env)
    assert done.returncode == 2
    assert "[redacted]ql" not in done.stderr and "postgres:postgres" not in done.stderr
    assert "cannot open the journal at postgresql://postgres:***@127.0.0.1:1/x" in done.stderr


def test_overlapping_secrets_are_masked_whole() -> None:
    secrets = Secrets()
    secrets.add("abcdefghijkl", "abcdefghijklMNOPQRSTUV")
    assert secrets.scrub("a abcdefghijklMNOPQRSTUV b abcdefghijkl") == "a [redacted] b [redacted]"
