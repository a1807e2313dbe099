"""Command line: parse, then dispatch. Also the MCP Bundle entry point.

    opportunity-mcp [--transport stdio|http] [--host 127.0.0.1] [--port 8765] [--config FILE]
                    [--no-auth] [--sse] [--sandbox]
    opportunity-mcp sandbox [--host 127.0.0.1] [--port 8766]
    opportunity-mcp journal [--limit 20] [--account TARGET] [--reconcile [--hours 24]]
    opportunity-mcp token

Every subcommand has --help and refuses arguments it does not know. SIGTERM ends the process as
SIGINT does: the sandbox's scratch journal is removed either way.

stdout belongs to the protocol on stdio: everything this module says goes to stderr.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from opportunity_mcp import __version__, logs
from opportunity_mcp.config import ConfigError, check_config_file, load_config, load_settings, with_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opportunity-mcp",
        description="MCP server for CRM opportunities (Plazbot / Wabotify, LeadConnector).",
        epilog="Subcommands: 'sandbox [--host H] [--port N] [--lc-burst N]' serves the sandbox CRM alone; "
        "'journal [--limit N]' shows recent writes; 'token' makes a bearer token for the config file.",
    )
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="stdio for chat clients (default), http for streamable HTTP at /mcp",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    parser.add_argument(
        "--sse",
        action="store_true",
        help="over HTTP, answer as server-sent events (with progress notifications) instead of plain JSON",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of accounts and HTTP bearer tokens (default: $OPPORTUNITY_MCP_CONFIG)",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="over HTTP on loopback only, accept calls without a bearer token (local development)",
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="write to the embedded sandbox CRM instead of a real one (configures both CRMs)",
    )
    parser.add_argument("--version", action="version", version=f"opportunity-mcp {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    problem = logs.configure()
    if problem is not None:
        logs.say(f"opportunity-mcp: {problem}")
        return 2
    _terminate_like_interrupt()
    commands = {"journal": _show_journal, "token": _new_token, "sandbox": _sandbox_alone}
    if args[:1] and args[0] in commands:
        return commands[args[0]](args[1:])
    return _serve(_parser().parse_args(args))


def _terminate_like_interrupt() -> None:
    """SIGTERM (a container stop, a supervisor) unwinds like Ctrl-C: `finally` blocks and exit
    handlers run, so scratch files go. uvicorn restores this handler and re-raises the signal once it
    has drained its connections."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_terminate)


def _on_terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sandbox_switch() -> bool | str:
    """OPPORTUNITY_MCP_SANDBOX, the bundle's "use the sandbox" switch: true or false (empty: false);
    anything else is what is wrong with it."""
    value = os.environ.get("OPPORTUNITY_MCP_SANDBOX", "").strip().lower()
    if value in ("", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    return "OPPORTUNITY_MCP_SANDBOX: must be true or false"


def _serve(opts: argparse.Namespace) -> int:
    from opportunity_mcp.serve import Serving, serve

    how = Serving(opts.transport, opts.host, opts.port, sse=opts.sse, no_auth=opts.no_auth)
    switch = _sandbox_switch()
    if isinstance(switch, str):
        logs.say(f"opportunity-mcp: {switch}")
        return 2
    if not (opts.sandbox or switch):
        try:
            config = load_config(opts.config)
        except ConfigError as exc:
            logs.say(f"opportunity-mcp: {exc}")
            return 2
        return _until_interrupted(lambda: serve(config, how))
    try:
        # The sandbox brings its own accounts; the variables and a config file are checked all the same.
        settings = load_settings()
        check_config_file(opts.config, settings)
    except ConfigError as exc:
        logs.say(f"opportunity-mcp: {exc}")
        return 2

    from opportunity_mcp.sandbox import SandboxServer, sandbox_config
    from opportunity_mcp.sandbox.board import board_routes

    sandbox = SandboxServer().start()
    try:
        # The sandbox forgets its deals at exit, so its journal must not outlive it either.
        journal = settings.journal or _scratch_journal()
        config = replace(with_settings(sandbox_config(sandbox.url), settings), journal=journal)
        how = replace(how, sandbox_url=sandbox.url)
        return _until_interrupted(lambda: serve(config, how, lambda journal: board_routes(sandbox.state, journal)))
    finally:
        sandbox.stop()


def _until_interrupted(run: Callable[[], int]) -> int:
    try:
        return run()
    except KeyboardInterrupt:  # SIGINT, or SIGTERM (`_on_terminate`)
        return 0


def _scratch_journal() -> str:
    folder = tempfile.mkdtemp(prefix="opportunity-mcp-sandbox-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return os.path.join(folder, "journal.sqlite3")


def _sandbox_alone(argv: list[str]) -> int:
    """`opportunity-mcp sandbox`: the sandbox CRM alone, for other processes to point at."""
    parser = argparse.ArgumentParser(prog="opportunity-mcp sandbox", description="Serve the sandbox CRM alone.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8766, help="port (default 8766)")
    parser.add_argument(
        "--lc-burst", type=int, default=100, help="LeadConnector requests allowed per 10 s (0: no limit); default 100"
    )
    opts = parser.parse_args(argv)
    from opportunity_mcp.sandbox import serve_forever

    logs.say(f"opportunity-mcp sandbox CRM on http://{opts.host}:{opts.port}")
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT, or SIGTERM (`_on_terminate`)
        serve_forever(opts.host, opts.port, lc_burst=opts.lc_burst)
    return 0


def _show_journal(argv: list[str]) -> int:
    """`opportunity-mcp journal`: the recent writes as a table on the terminal."""
    parser = argparse.ArgumentParser(prog="opportunity-mcp journal", description="Show recent writes.")
    parser.add_argument("--limit", type=_positive, default=20, help="how many rows (default 20)")
    parser.add_argument(
        "--account", metavar="TARGET", action="append", help="only this workspace or location id (repeatable)"
    )
    parser.add_argument(
        "--reconcile",
        action="store_true",
        help="read every unknown write of the last --hours back in the CRM (the configured accounts) and record "
        "what it became: done, or failed when the CRM surely does not have it; nothing is sent",
    )
    parser.add_argument("--hours", type=_positive, default=24, help="with --reconcile: how far back (default 24)")
    opts = parser.parse_args(argv)
    import anyio

    if opts.reconcile:
        return _reconcile(opts.hours)

    from opportunity_mcp.app import journal_lines
    from opportunity_mcp.journal import default_path, is_postgres, open_journal

    path = os.environ.get("OPPORTUNITY_MCP_JOURNAL") or str(default_path())
    if not is_postgres(path) and path != ":memory:" and not os.path.exists(path):
        logs.say(f"opportunity-mcp: no journal at {path} yet")
        return 1
    journal = open_journal(path)
    try:
        try:
            anyio.run(journal.settle)  # a crashed process's pending rows read as what they are: unknown
        except Exception as exc:  # a read-only journal can still be shown
            logs.say(f"opportunity-mcp: could not settle pending rows ({type(exc).__name__})")
        rows = anyio.run(journal.recent, opts.limit, opts.account)
        sys.stdout.write(f"journal: {journal.where}\n{journal_lines(rows)}\n")
    finally:
        journal.close()
    return 0


def _reconcile(hours: int) -> int:
    import anyio

    from opportunity_mcp.app import reconcile_journal

    try:
        config = load_config(None)
    except ConfigError as exc:
        logs.say(f"opportunity-mcp: {exc}")
        return 2
    try:
        report = anyio.run(reconcile_journal, config, float(hours))
    except Exception as exc:
        logs.say(f"opportunity-mcp: could not reconcile the journal ({type(exc).__name__})")
        return 1
    sys.stdout.write(f"{report}\n")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 10000")
    return value


def _new_token(argv: list[str]) -> int:
    """`opportunity-mcp token`: a new bearer token (or, with --connector, a connector code for the OAuth
    consent page), and the lines that grant it in the config file."""
    parser = argparse.ArgumentParser(
        prog="opportunity-mcp token",
        description="Print a new bearer token and the [tokens.NAME] lines that grant it in the config file.",
    )
    parser.add_argument(
        "--connector",
        action="store_true",
        help="a code a person types when adding the server to claude.ai or ChatGPT: [connectors.NAME] lines",
    )
    opts = parser.parse_args(argv)
    from opportunity_mcp.auth import new_token

    token, digest = new_token()
    table = "connectors" if opts.connector else "tokens"
    who = "the person adding the connector" if opts.connector else "the HTTP client"
    logs.say(f"Give it to {who}; put its SHA-256 in the config file (the code itself is not kept):")
    sys.stdout.write(f'{table[:-1]}: {token}\n\n[{table}.NAME]\nsha256 = "{digest}"\naccounts = ["ACCOUNT"]\n')
    return 0
