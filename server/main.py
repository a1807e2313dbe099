"""Command line: flags → config → transport. Also the MCP Bundle entry point.

    opportunity-mcp [--transport stdio|http] [--host 127.0.0.1] [--port 8765] [--config FILE]
                    [--no-auth] [--sse] [--sandbox]
    opportunity-mcp sandbox [--host 127.0.0.1] [--port 8766]
    opportunity-mcp journal [--limit 20]
    opportunity-mcp token

stdout belongs to the protocol on stdio: everything this module says goes to stderr.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pydantic import SecretStr

from server import __version__
from server.config import (
    ConfigError,
    HttpSettings,
    LeadConnectorAccount,
    PlazbotAccount,
    ServerConfig,
    TokenGrant,
    load_config,
    load_http_settings,
)

if TYPE_CHECKING:
    from mcp.server.mcpserver.tools import Tool
    from mcp.server.transport_security import TransportSecuritySettings

    from server.journal import Journal
    from server.sandbox import SandboxServer

log = logging.getLogger("server")


def _say(line: str) -> None:
    """One line for the person who started the server; stderr, since stdout is the protocol."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opportunity-mcp",
        description="MCP server for CRM opportunities (Plazbot / Wabotify, LeadConnector).",
        epilog="Subcommands: 'sandbox [--host H] [--port N]' serves the sandbox CRM alone; 'journal [--limit N]' "
        "shows recent writes; 'token' makes a bearer token for the config file.",
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


def _sandbox_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opportunity-mcp sandbox", description="Serve the sandbox CRM alone.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    return parser


def _configure_logging() -> None:
    level = os.environ.get("OPPORTUNITY_MCP_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        stream=sys.stderr,
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Request lines of the HTTP client and per-request session notes of the SDK add nothing to our
    # own log lines; they come back with OPPORTUNITY_MCP_LOG_LEVEL=DEBUG.
    if level != "DEBUG":
        for noisy in ("httpx2", "httpcore2", "httpx", "httpcore", "mcp", "uvicorn"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def sandbox_config(url: str) -> ServerConfig:
    from server.sandbox import LC_LOCATION, LC_PIPELINE, LEADCONNECTOR_TOKEN, PLAZBOT_KEY, PLAZBOT_WORKSPACE

    return ServerConfig(
        accounts=(
            PlazbotAccount(url, SecretStr(PLAZBOT_KEY), PLAZBOT_WORKSPACE, "sandbox-plazbot"),
            LeadConnectorAccount(
                url, SecretStr(LEADCONNECTOR_TOKEN), LC_LOCATION, LC_PIPELINE, "sandbox-leadconnector"
            ),
        ),
        sandbox=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    if args_list[:1] == ["journal"]:
        return _show_journal(args_list[1:])
    if args_list[:1] == ["token"]:
        return _new_token()
    if args_list[:1] == ["sandbox"]:
        opts = _sandbox_parser().parse_args(args_list[1:])
        from server.sandbox import serve_forever

        _say(f"opportunity-mcp sandbox CRM on http://{opts.host}:{opts.port}")
        serve_forever(opts.host, opts.port)
        return 0

    opts = _parser().parse_args(args_list)
    sandbox = None
    if opts.sandbox:
        from server.sandbox import SandboxServer

        sandbox = SandboxServer().start()
        # The sandbox forgets its deals at exit, so its journal must not outlive it either.
        journal = os.environ.get("OPPORTUNITY_MCP_JOURNAL") or _scratch_journal()
        config = replace(sandbox_config(sandbox.url), journal=journal)
    else:
        try:
            config = load_config(opts.config)
        except ConfigError as exc:
            _say(f"opportunity-mcp: {exc}")
            return 2
    try:
        return _serve(config, opts.transport, opts.host, opts.port, sandbox, sse=opts.sse, no_auth=opts.no_auth)
    except KeyboardInterrupt:
        return 0
    finally:
        if sandbox is not None:
            sandbox.stop()


def _serve(
    config: ServerConfig,
    transport: str,
    host: str,
    port: int,
    sandbox: SandboxServer | None,
    *,
    sse: bool = False,
    no_auth: bool = False,
) -> int:
    from server.app import build_tools

    _scrub_logs(config.secrets())
    tools = build_tools(config)
    names = ", ".join(t.name for t in tools)
    target = f"the sandbox CRM at {sandbox.url}" if sandbox else _targets(config)
    guards = None
    if transport == "http":
        # Everything that can refuse the start is checked before the journal is opened.
        guards = _http_guards(config, host, sandbox, no_auth=no_auth)
        if guards is None:
            return 2
    journal = _open_journal(config)
    if journal is None:
        return 2
    try:
        if guards is None:
            from server.app import build_server

            server = build_server(config, tools, journal)
            _freeze()
            _say(f"opportunity-mcp {__version__} on stdio; tools: {names}; writes go to {target}")
            server.run("stdio")
            return 0
        return _serve_http(config, tools, journal, host, port, sandbox, guards, sse=sse, target=target)
    finally:
        journal.close()


class _Scrub(logging.Filter):
    """Takes every configured secret out of log lines, whichever library wrote them."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        return True


def _scrub_logs(secrets: tuple[str, ...]) -> None:
    if secrets:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_Scrub(secrets))


def _http_guards(
    config: ServerConfig, host: str, sandbox: SandboxServer | None, *, no_auth: bool
) -> tuple[HttpSettings, TransportSecuritySettings | None, tuple[TokenGrant, ...]] | None:
    """The HTTP settings, Host/Origin checks and bearer tokens to serve with; None (said why) to refuse."""
    from server.auth import new_token

    try:
        http = load_http_settings()
        security = transport_security(host, http)
    except ConfigError as exc:
        _say(f"opportunity-mcp: {exc}")
        return None
    grants = config.tokens
    if no_auth:
        if host not in LOOPBACK:
            _say(f"opportunity-mcp: --no-auth is for loopback only; bound to {host}, clients need bearer tokens")
            return None
        grants = ()
    elif not grants and sandbox is not None:
        token, digest = new_token()
        grants = (TokenGrant("sandbox", digest, frozenset({"*"})),)
        _say(f"sandbox bearer token for this run (every account): {token}")
    elif not grants:
        _say(
            "opportunity-mcp: HTTP clients need bearer tokens: add a [tokens.NAME] table to the config file "
            "(`opportunity-mcp token` makes one), or pass --no-auth on loopback for local development"
        )
        return None
    return http, security, grants


def _freeze() -> None:
    # What start-up built lives as long as the process: keep the collector from rescanning it on
    # every collection (it is what lengthens the latency tail under load).
    gc.collect()
    gc.freeze()


def _open_journal(config: ServerConfig) -> Journal | None:
    from server.app import open_journal

    try:
        return open_journal(config)
    except Exception as exc:  # an unreachable database, a missing driver, an unwritable path
        from server.journal import redacted

        where = redacted(config.journal) if config.journal else "the default SQLite file"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        for secret in config.secrets():
            detail = detail.replace(secret, "[redacted]")
        _say(f"opportunity-mcp: cannot open the journal at {where}: {detail}")
        return None


def _serve_http(
    config: ServerConfig,
    tools: list[Tool],
    journal: Journal,
    host: str,
    port: int,
    sandbox: SandboxServer | None,
    guards: tuple[HttpSettings, TransportSecuritySettings | None, tuple[TokenGrant, ...]],
    *,
    sse: bool,
    target: str,
) -> int:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from server.app import build_server
    from server.auth import StaticTokens

    names = ", ".join(t.name for t in tools)
    http, security, grants = guards
    try:
        sock = socket.create_server((host, port))
        # Accepted connections inherit this: without it, a response written in two parts waits
        # ~40 ms for the client's delayed ACK (Nagle).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        _say(f"opportunity-mcp: cannot listen on {host}:{port}: {exc.strerror}")
        return 2
    port = sock.getsockname()[1]
    url = f"http://{_url_host(host)}:{port}"
    server = build_server(config, tools, journal, tokens=StaticTokens(grants) if grants else None, url=url)
    board = ""
    if sandbox is not None:
        from server.sandbox.board import board_routes

        for path, endpoint in board_routes(sandbox.state, journal):
            server.custom_route(path, methods=["GET"])(endpoint)
        board = f"; sandbox board at {url}/"

    async def healthz(_: Request) -> Response:
        """For load balancers and probes: the process answers and its journal can be read."""
        try:
            await journal.ping()
        except Exception:  # any failure means not healthy
            return JSONResponse({"ok": False, "journal": "unreadable"}, status_code=503)
        return JSONResponse({"ok": True, "version": __version__, "tools": [t.name for t in tools]})

    server.custom_route("/healthz", methods=["GET"])(healthz)
    # Stateless, so any replica can answer any request; plain JSON answers unless --sse.
    app = server.streamable_http_app(
        stateless_http=True,
        json_response=not sse,
        host=host,
        transport_security=security,
        max_request_body_size=http.max_body,
    )
    _freeze()
    auth = f"bearer tokens ({len(grants)})" if grants else "no auth (loopback)"
    _say(
        f"opportunity-mcp {__version__} listening on {url}/mcp; tools: {names}; writes go to {target}; "
        f"{auth}; journal {journal.where}{board}"
    )
    # On SIGTERM uvicorn stops accepting and lets in-flight calls (and their journal rows) finish.
    settings = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=http.shutdown_grace)
    uvicorn.Server(settings).run(sockets=[sock])
    return 0


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def transport_security(host: str, http: HttpSettings) -> TransportSecuritySettings | None:
    """Host/Origin checks. On loopback the SDK's own (localhost only) apply; bound anywhere else they
    stay on, for the host names configured, and starting without any is refused."""
    from mcp.server.transport_security import TransportSecuritySettings

    if host in LOOPBACK:
        return None
    hosts = http.hosts()
    if not hosts:
        raise ConfigError(
            f"bound to {host}: set OPPORTUNITY_MCP_ALLOWED_HOSTS to the host names clients use "
            "(comma-separated, e.g. mcp.example.com,mcp.example.com:*), so Host checks stay on"
        )
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=http.origins()
    )


def _scratch_journal() -> str:
    folder = tempfile.mkdtemp(prefix="opportunity-mcp-sandbox-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return os.path.join(folder, "journal.sqlite3")


def _show_journal(argv: list[str]) -> int:
    """`opportunity-mcp journal`: the recent writes as a table on the terminal."""
    parser = argparse.ArgumentParser(prog="opportunity-mcp journal", description="Show recent writes.")
    parser.add_argument("--limit", type=int, default=20)
    opts = parser.parse_args(argv)
    import anyio

    from server.app import journal_lines
    from server.journal import default_path, is_postgres, open_journal

    path = os.environ.get("OPPORTUNITY_MCP_JOURNAL") or str(default_path())
    if not is_postgres(path) and path != ":memory:" and not os.path.exists(path):
        _say(f"opportunity-mcp: no journal at {path} yet")
        return 1
    journal = open_journal(path)
    try:
        rows = anyio.run(journal.recent, opts.limit)
        sys.stdout.write(f"journal: {journal.where}\n{journal_lines(rows)}\n")
    finally:
        journal.close()
    return 0


def _new_token() -> int:
    """`opportunity-mcp token`: a new bearer token, and the lines that grant it in the config file."""
    from server.auth import new_token

    token, digest = new_token()
    _say("Give the token to the HTTP client; put its SHA-256 in the config file (the token itself is not kept):")
    sys.stdout.write(f'token: {token}\n\n[tokens.NAME]\nsha256 = "{digest}"\naccounts = ["ACCOUNT"]\n')
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _targets(config: ServerConfig) -> str:
    found = [
        f"{a.name} ({'workspace' if isinstance(a, PlazbotAccount) else 'location'} {a.target} at {a.base_url})"
        for a in config.accounts
    ]
    return ", ".join(found)
