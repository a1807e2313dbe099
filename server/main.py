"""Command line: flags → config → transport. Also the MCP Bundle entry point.

    opportunity-mcp [--transport stdio|http] [--host 127.0.0.1] [--port 8765] [--sandbox]
    opportunity-mcp sandbox [--host 127.0.0.1] [--port 8766]
    opportunity-mcp journal [--limit 20]

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
    load_config,
    load_http_settings,
)

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings

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
        epilog="Subcommand: 'opportunity-mcp sandbox [--host H] [--port N]' serves the sandbox CRM alone.",
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
        plazbot=PlazbotAccount(url, SecretStr(PLAZBOT_KEY), PLAZBOT_WORKSPACE),
        leadconnector=LeadConnectorAccount(url, SecretStr(LEADCONNECTOR_TOKEN), LC_LOCATION, LC_PIPELINE),
        sandbox=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    if args_list[:1] == ["journal"]:
        return _show_journal(args_list[1:])
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
            config = load_config()
        except ConfigError as exc:
            _say(f"opportunity-mcp: {exc}")
            return 2
    try:
        return _serve(config, opts.transport, opts.host, opts.port, sandbox, sse=opts.sse)
    except KeyboardInterrupt:
        return 0
    finally:
        if sandbox is not None:
            sandbox.stop()


def _serve(
    config: ServerConfig, transport: str, host: str, port: int, sandbox: SandboxServer | None, *, sse: bool = False
) -> int:
    from server.app import build_server, build_tools, open_journal

    tools = build_tools(config)
    journal = open_journal(config)
    server = build_server(config, tools, journal)
    names = ", ".join(t.name for t in tools)
    target = f"the sandbox CRM at {sandbox.url}" if sandbox else _targets(config)
    # What start-up built lives as long as the process: keep the collector from rescanning it on
    # every collection (it is what lengthens the latency tail under load).
    gc.collect()
    gc.freeze()
    if transport == "stdio":
        _say(f"opportunity-mcp {__version__} on stdio; tools: {names}; writes go to {target}")
        server.run("stdio")
        return 0

    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    try:
        sock = socket.create_server((host, port))
        # Accepted connections inherit this: without it, a response written in two parts waits
        # ~40 ms for the client's delayed ACK (Nagle).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        _say(f"opportunity-mcp: cannot listen on {host}:{port}: {exc.strerror}")
        return 2
    board = ""
    if sandbox is not None:
        from server.sandbox.board import board_routes

        for path, endpoint in board_routes(sandbox.state, journal):
            server.custom_route(path, methods=["GET"])(endpoint)
        board = f"; sandbox board at http://{_url_host(host)}:{port}/"
    try:
        http = load_http_settings()
        security = transport_security(host, http)
    except ConfigError as exc:
        _say(f"opportunity-mcp: {exc}")
        return 2

    async def healthz(_: Request) -> Response:
        """For load balancers and probes: the process answers and its journal can be read."""
        try:
            journal.ping()
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
    _say(
        f"opportunity-mcp {__version__} listening on http://{_url_host(host)}:{port}/mcp; tools: {names}; "
        f"writes go to {target}{board}"
    )
    # On SIGTERM uvicorn stops accepting and lets in-flight calls (and their journal rows) finish.
    config_ = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=http.shutdown_grace)
    try:
        uvicorn.Server(config_).run(sockets=[sock])
    finally:
        journal.close()
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
    from server.app import journal_lines
    from server.journal import Journal, default_path

    path = os.environ.get("OPPORTUNITY_MCP_JOURNAL") or str(default_path())
    if path != ":memory:" and not os.path.exists(path):
        _say(f"opportunity-mcp: no journal at {path} yet")
        return 1
    journal = Journal(path)
    try:
        sys.stdout.write(f"journal: {path}\n{journal_lines(journal.recent(opts.limit))}\n")
    finally:
        journal.close()
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _targets(config: ServerConfig) -> str:
    found = []
    if config.plazbot:
        found.append(f"{config.plazbot.base_url} (workspace {config.plazbot.workspace_id})")
    if config.leadconnector:
        found.append(f"{config.leadconnector.base_url} (location {config.leadconnector.location_id})")
    return " and ".join(found)
