"""The app factory: the MCPServer of a config (tools of the configured CRMs, prompts, the journal
resource), and the lifespan that holds one pooled HTTP client per CRM base URL for the life of the
process (or of the HTTP session manager). The HTTP application around it is `http_app`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx2
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.request_state import RequestStateSecurity
from pydantic import AnyHttpUrl

from opportunity_mcp import __version__
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.crm.base import Wiring
from opportunity_mcp.crm.families import FAMILIES
from opportunity_mcp.crm.http import make_http_client
from opportunity_mcp.crm.policy import RateLimiter
from opportunity_mcp.journal import Journal, Row
from opportunity_mcp.journal import open_journal as open_store
from opportunity_mcp.oauth import OAuthProvider
from opportunity_mcp.prompts import as_mcp, load
from opportunity_mcp.scrub import KNOWN
from opportunity_mcp.tools import build_tools
from opportunity_mcp.tools.access import State, scoped_accounts, within_path
from opportunity_mcp.tools.reconcile import in_background, reconcile_rows
from opportunity_mcp.tools.references import ReferenceCache
from opportunity_mcp.untrusted import ID_LIMIT, clean, quoted

INSTRUCTIONS = (
    "Writes CRM opportunities (deals). Use ids the user or a lookup gave you, never invented ones. "
    "Pass the id of the message that asked for a write as idempotencyKey: a repeat then returns the first "
    "result instead of a second deal, and so does an identical create. When a result says the outcome is "
    "unknown, check the CRM before calling again."
)


def open_journal(config: ServerConfig) -> Journal:
    return open_store(config.journal)


def journal_lines(rows: list[Row]) -> str:
    """Recent writes, newest first, one compact line each (for the agent and the terminal)."""
    out = []
    for row in rows:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.at))
        # Codes, ids and keys came from a CRM or a client: one line each, bounded, keys quoted.
        code, opp = (clean(x, ID_LIMIT) if x else None for x in (row.code, row.opportunity_id))
        what = " ".join(x for x in (code, f"id {opp}" if opp else None) if x)
        status = f" HTTP {row.status}" if row.status else ""
        key = f" key {quoted(row.idem_key)}" if row.idem_key else ""
        out.append(
            f"{stamp} {row.tool} {row.account} {row.outcome}{status} {what}{key} "
            f"{row.latency_ms or 0} ms {row.requests} req".replace("  ", " ")
        )
    return "\n".join(out) if out else "No writes yet."


@asynccontextmanager
async def running_state(
    config: ServerConfig,
    store: Journal,
    references: ReferenceCache | None = None,
    *,
    open_access: bool = True,
    stateless: bool = False,
) -> AsyncIterator[State]:
    """What the tools work with for the life of a server (or of a `journal --reconcile`): one pooled
    HTTP client per CRM base URL, shared by the accounts that live there, and one rate limiter."""
    async with AsyncExitStack() as stack:
        pools: dict[str, httpx2.AsyncClient] = {}
        for account in config.accounts:
            if account.base_url not in pools:
                pools[account.base_url] = await stack.enter_async_context(
                    make_http_client(account.base_url, config.http_timeout, f"opportunity-mcp/{__version__}")
                )
        # One limiter for every location: LeadConnector counts requests per location. With a
        # PostgreSQL journal its windows live in the database, shared by every replica.
        limiter = RateLimiter(config.rate_limit, config.rate_window, store.shared_window())
        yield State(
            clients=tuple(
                FAMILIES[a.family].connect(a, Wiring(pools[a.base_url], limiter, store)) for a in config.accounts
            ),
            journal=store,
            call_budget=config.call_budget,
            plazbot_pages=config.plazbot_pages,
            duplicate_window=config.duplicate_window,
            settle=config.settle,
            open_access=open_access,
            mid_call_requests=not stateless,
            references=references or ReferenceCache(config.lookup_ttl),
        )


async def reconcile_journal(config: ServerConfig, hours: float) -> str:
    """`journal --reconcile`: every unknown write of the last `hours` read back, a line each, and a summary."""
    store = open_journal(config)
    lines: list[str] = []

    async def each(row: Row, became: str) -> None:
        lines.append(f"{journal_lines([row])} → {became}")

    try:
        await store.settle()
        async with running_state(config, store) as state:
            counts = await reconcile_rows(state, time.time() - hours * 3600, limit=1000, each=each)
    finally:
        store.close()
    summary = ", ".join(f"{n} {what}" for what, n in counts.items()) or "no unknown writes"
    return "\n".join([*lines, f"{sum(counts.values())} unknown write(s) of the last {hours:g} h read back: {summary}"])


def _auth(tokens: TokenVerifier | None, oauth: OAuthProvider | None, url: str) -> AuthSettings | None:
    """Static tokens alone advertise nothing; the authorization server publishes its metadata and
    takes only tokens issued for this server's own URL (RFC 8707)."""
    if oauth is not None:
        # Given as text, so the issuer keeps its exact form (no trailing slash) everywhere it is
        # published: clients compare it character for character (RFC 8414).
        return AuthSettings.model_validate(
            {"issuer_url": oauth.public_url, "resource_server_url": oauth.resource} | _OAUTH_OPTIONS
        )
    return None if tokens is None else AuthSettings(issuer_url=AnyHttpUrl(url), resource_server_url=None)


_OAUTH_OPTIONS: dict[str, Any] = {
    "client_registration_options": ClientRegistrationOptions(enabled=True),
    "revocation_options": RevocationOptions(enabled=True),
    "validate_token_resource": True,
}


def state_key(config: ServerConfig) -> str:
    """The request-state key: derived from the accounts' secrets, which every replica shares."""
    secrets = sorted(f"{a.family}/{a.target}/{a.secret.get_secret_value()}" for a in config.accounts)
    return hashlib.sha256("\0".join(["opportunity-mcp/request-state", *secrets]).encode()).hexdigest()


def build_server(
    config: ServerConfig,
    journal: Journal | None = None,
    *,
    tokens: TokenVerifier | None = None,
    url: str = "http://127.0.0.1",
    stateless: bool = False,
    oauth: OAuthProvider | None = None,
    auth: AuthSettings | None = None,
) -> MCPServer[State]:
    """The server for `config`, with the tools of its CRM families. A `journal` passed in is
    the caller's to close; otherwise each run of the server opens the configured one and closes it.
    With `tokens`, HTTP calls need a bearer token and write only to the accounts it allows; `url` is
    where the server is reached (the SDK's auth settings want it)."""
    current: list[Journal] = [journal] if journal is not None else []
    KNOWN.add(*config.secrets())  # every answer and log line is scrubbed of them
    # Per server, not per run of its lifespan: stateless HTTP runs it per request.
    references = ReferenceCache(config.lookup_ttl)

    @asynccontextmanager
    async def lifespan(_: MCPServer[State]) -> AsyncIterator[State]:
        store = journal or open_journal(config)
        current[:] = [store]
        try:
            closed = tokens is not None or oauth is not None
            running = running_state(config, store, references, open_access=not closed, stateless=stateless)
            async with running as state, anyio.create_task_group() as background:
                if config.reconcile_every > 0:
                    background.start_soon(in_background, state, config.reconcile_every)
                yield state
                background.cancel_scope.cancel()
        finally:
            if journal is None:
                store.close()

    server: MCPServer[State] = MCPServer(
        "opportunity-mcp",
        title="Opportunity MCP",
        version=__version__,
        instructions=INSTRUCTIONS,
        tools=build_tools(config.families()),
        lifespan=lifespan,
        auth=auth or _auth(tokens, oauth, url),
        token_verifier=tokens if oauth is None else None,
        auth_server_provider=oauth,
        # A question asked by returning it (protocol 2026-07-28) comes back with state sealed under a
        # key every replica of this configuration derives alike, so any replica takes the answer.
        request_state_security=RequestStateSecurity(keys=[state_key(config)]),
    )

    for prompt in load():
        server.add_prompt(as_mcp(prompt))

    @server.resource(
        "journal://recent",
        name="recent-writes",
        title="Recent writes",
        description="The last 20 writes, newest first: tool, account, outcome, opportunity, latency.",
        mime_type="text/plain",
    )
    async def recent_writes() -> str:
        if not current:
            return "No writes yet."
        if tokens is None and oauth is None:
            only = within_path(None)  # a per-account URL shows that account's writes alone
            targets = None if only is None else {a.target for a in config.accounts if a.name in only}
            return journal_lines(await current[0].recent(20, targets))
        # A token sees the writes of the accounts it may write to, nobody else's: filtered in the
        # query, before the limit, so another account's burst cannot push them out.
        token = get_access_token()
        allowed = scoped_accounts(token.scopes if token else ())
        mine = {a.target for a in config.accounts if allowed is None or a.name in allowed}
        return journal_lines(await current[0].recent(20, mine))

    return server
