"""Serving: open the journal, then run the MCP server on stdio or the HTTP application under uvicorn.
Everything that can refuse the start is checked before the journal is opened, and said in one line
on stderr (exit status 2)."""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from opportunity_mcp import __version__
from opportunity_mcp.config import ConfigError, HttpSettings, ServerConfig, TokenGrant, load_http_settings
from opportunity_mcp.crm.families import FAMILIES
from opportunity_mcp.journal import Journal, open_journal, redacted
from opportunity_mcp.logs import say, scrub
from opportunity_mcp.scrub import scrub as scrub_text
from opportunity_mcp.tools import specs_for
from opportunity_mcp.values import LOOPBACK

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

    from opportunity_mcp.http_app import Endpoint


@dataclass(frozen=True, slots=True)
class Serving:
    """What the command line asked for."""

    transport: str = "stdio"
    host: str = "127.0.0.1"
    port: int = 8765
    sse: bool = False
    no_auth: bool = False
    sandbox_url: str | None = None  # the embedded sandbox the config points at, if any


Routes = Callable[[Journal], Sequence[tuple[str, "Endpoint"]]]


def serve(config: ServerConfig, how: Serving, routes: Routes | None = None) -> int:
    """Run until stopped; `routes` makes extra HTTP routes from the journal (the sandbox board).
    Returns the exit status."""
    scrub(config.secrets())
    http: tuple[HttpSettings, tuple[TokenGrant, ...]] | None = None
    if how.transport == "http":
        http = _http_ready(config, how)
        if http is None:
            return 2
    journal = _open_journal(config)
    if journal is None:
        return 2
    try:
        if http is not None:
            return _serve_http(config, journal, how, *http, routes)
        from opportunity_mcp.app import build_server

        server = build_server(config, journal)
        _freeze()
        say(f"opportunity-mcp {__version__} on stdio; tools: {_names(config)}; writes go to {_targets(config, how)}")
        server.run("stdio")
        return 0
    finally:
        journal.close()


def _http_ready(config: ServerConfig, how: Serving) -> tuple[HttpSettings, tuple[TokenGrant, ...]] | None:
    """The HTTP guards' settings and the bearer tokens to accept; None (said why) to refuse the start."""
    from opportunity_mcp.http_app import transport_security

    try:
        http = load_http_settings()
        transport_security(how.host, http)
    except ConfigError as exc:
        say(f"opportunity-mcp: {exc}")
        return None
    grants = _grants(config, how)
    return None if grants is None else (http, grants)


def _grants(config: ServerConfig, how: Serving) -> tuple[TokenGrant, ...] | None:
    """The bearer tokens to accept over HTTP (none: open, on loopback only); None (said why) to refuse."""
    from opportunity_mcp.auth import new_token

    if how.no_auth:
        if how.host not in LOOPBACK:
            say(f"opportunity-mcp: --no-auth is for loopback only; bound to {how.host}, clients need bearer tokens")
            return None
        return ()
    if config.tokens:
        return config.tokens
    if _identity_provider():
        return ()  # an identity provider's tokens (OPPORTUNITY_MCP_JWT_*), checked by the app
    if how.sandbox_url is not None:
        token, digest = new_token()
        say(f"sandbox bearer token for this run (every account): {token}")
        return (TokenGrant("sandbox", digest, frozenset({"*"})),)
    say(
        "opportunity-mcp: HTTP clients need bearer tokens: add a [tokens.NAME] table to the config file "
        "(`opportunity-mcp token` makes one), or pass --no-auth on loopback for local development"
    )
    return None


def _auth_words(grants: tuple[TokenGrant, ...], identity: bool) -> str:
    connectors = sum(g.connector for g in grants)
    said = [f"bearer tokens ({len(grants) - connectors})"] if len(grants) > connectors else []
    said += [f"OAuth with connector codes ({connectors})"] if connectors else []
    said += ["an identity provider's tokens"] if identity else []
    return ", ".join(said) or "no auth (loopback)"


def _identity_provider() -> bool:
    from opportunity_mcp.oauth_jwt import JwtSettings

    try:
        return JwtSettings().enabled
    except ValueError:
        return True  # set, but wrong: the app says what is wrong with it


def _open_journal(config: ServerConfig) -> Journal | None:
    try:
        journal = open_journal(config.journal)
        settled = anyio.run(journal.settle)
        if settled:
            say(f"opportunity-mcp: {settled} write(s) of a process that is gone marked unknown (check them in the CRM)")
        return journal
    except Exception as exc:  # an unreachable database, a missing driver, an unwritable path
        where = redacted(config.journal) if config.journal else "the default SQLite file"
        detail = scrub_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        say(f"opportunity-mcp: cannot open the journal at {where}: {detail}")
        return None


def _serve_http(
    config: ServerConfig,
    journal: Journal,
    how: Serving,
    http: HttpSettings,
    grants: tuple[TokenGrant, ...],
    routes: Routes | None,
) -> int:
    import uvicorn

    from opportunity_mcp.http_app import HttpOptions, build_http_app

    try:
        sock = _listen(how.host, how.port)
    except OSError as exc:
        say(f"opportunity-mcp: {exc.strerror}")
        return 2
    url = f"http://{_url_host(how.host)}:{sock.getsockname()[1]}"
    extra = routes(journal) if routes else ()
    options = HttpOptions(host=how.host, url=url, grants=grants, settings=http, sse=how.sse, routes=extra)
    try:
        app = build_http_app(config, journal, options)
    except ConfigError as exc:  # connectors without a public URL, identity provider settings
        sock.close()
        say(f"opportunity-mcp: {exc}")
        return 2
    _freeze()
    auth = _auth_words(grants, _identity_provider())
    board = f"; sandbox board at {url}/" if extra else ""
    say(
        f"opportunity-mcp {__version__} listening on {url}/mcp; tools: {_names(config)}; writes go to "
        f"{_targets(config, how)}; {auth}; journal {journal.where}{board}"
    )
    # On SIGTERM uvicorn stops accepting and lets in-flight calls (and their journal rows) finish.
    uvicorn.Server(uvicorn_config(app, http.shutdown_grace, http)).run(sockets=[sock])
    return 0


def uvicorn_config(app: Starlette, grace: int, http: HttpSettings | None = None) -> uvicorn.Config:
    """uvicorn without a logging config of its own: its lines go through the root handler, and so
    through the secret scrubber, like every other line; its connections guarded (`connections`)."""
    import uvicorn

    from opportunity_mcp.connections import Limits, connection_cap, guarded_protocol, quiet_exhaustion

    http = http or HttpSettings()
    limits = Limits(http.head_timeout, http.body_timeout, http.keep_alive, connection_cap(http.max_connections))
    quiet_exhaustion()
    return uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=grace,
        http=guarded_protocol(limits),
        timeout_keep_alive=int(limits.keep_alive) or 1,
        backlog=128,  # asyncio retries a refused accept once per queued connection: keep the queue short
    )


def _listen(host: str, port: int) -> socket.socket:
    try:
        sock = socket.create_server((host, port))
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # Accepted connections inherit this: without it, a response written in two parts waits ~40 ms
    # for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _freeze() -> None:
    # What start-up built lives as long as the process: keep the collector from rescanning it on
    # every collection (it is what lengthens the latency tail under load).
    gc.collect()
    gc.freeze()


def _names(config: ServerConfig) -> str:
    return ", ".join(spec.name for spec in specs_for(config.families()))


def _targets(config: ServerConfig, how: Serving) -> str:
    if how.sandbox_url is not None:
        return f"the sandbox CRM at {how.sandbox_url}"
    return ", ".join(f"{a.name} ({FAMILIES[a.family].target_kind} {a.target} at {a.base_url})" for a in config.accounts)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
