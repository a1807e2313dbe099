"""Builds the MCPServer: the tools of the configured CRMs, and the lifespan that holds one pooled
HTTP client per CRM for the life of the process (or of the HTTP session manager)."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx2
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import AnyHttpUrl, BaseModel, ConfigDict

from server import __version__
from server.config import ServerConfig
from server.crm.http import make_http_client
from server.crm.leadconnector import LeadConnectorClient
from server.crm.plazbot import PlazbotClient
from server.crm.policy import RateLimiter
from server.journal import Journal, Row
from server.journal import open_journal as open_store
from server.models import (
    CreateOpportunityArgs,
    UpdateOpportunityFieldArgs,
    UpsertOpportunityArgs,
    envelope_schema,
    flat_schema,
)
from server.prompts import as_mcp, load
from server.tools import State, create_opportunity, update_opportunity_field, upsert_opportunity

INSTRUCTIONS = (
    "Writes CRM opportunities (deals). Use ids the user or a lookup gave you, never invented ones. "
    "Pass the id of the message that asked for a write as idempotencyKey: a repeat then returns the first "
    "result instead of a second deal, and so does an identical create. When a result says the outcome is "
    "unknown, check the CRM before calling again."
)

ToolFn = Callable[[dict[str, Any], Context[Any, Any]], Awaitable[CallToolResult]]


class _RawArguments(ArgModelBase):
    """Hands the raw arguments to the tool, which validates them with its own model so that a
    refusal reads as one line per argument instead of pydantic's report."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


_PLAZBOT_OUTPUT = envelope_schema(leave_out="status")
_LEADCONNECTOR_OUTPUT = envelope_schema(leave_out="code")


def _tool(fn: ToolFn, *, title: str, args: type[BaseModel], idempotent: bool, output: dict[str, Any]) -> Tool:
    return Tool(
        fn=fn,
        name=fn.__name__,
        title=title,
        description=inspect.cleandoc(fn.__doc__ or ""),
        parameters=flat_schema(args),
        # The envelope is built by our own model: publish its schema, skip re-validating it per call.
        fn_metadata=FuncMetadata(arg_model=_RawArguments, output_schema=output),
        is_async=True,
        context_kwarg="ctx",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=idempotent, open_world_hint=True
        ),
    )


def build_tools(config: ServerConfig) -> list[Tool]:
    """Only the tools whose CRM is configured."""
    tools: list[Tool] = []
    if config.plazbot is not None:
        plazbot = {"output": _PLAZBOT_OUTPUT}
        tools.append(
            _tool(
                create_opportunity, title="Create opportunity", args=CreateOpportunityArgs, idempotent=False, **plazbot
            )
        )
        tools.append(
            _tool(
                update_opportunity_field,
                title="Update opportunity field",
                args=UpdateOpportunityFieldArgs,
                idempotent=True,
                **plazbot,
            )
        )
    if config.leadconnector is not None:
        tools.append(
            _tool(
                upsert_opportunity,
                title="Upsert opportunity",
                args=UpsertOpportunityArgs,
                idempotent=False,
                output=_LEADCONNECTOR_OUTPUT,
            )
        )
    return tools


def open_journal(config: ServerConfig) -> Journal:
    return open_store(config.journal)


def journal_lines(rows: list[Row]) -> str:
    """Recent writes, newest first, one compact line each (for the agent and the terminal)."""
    out = []
    for row in rows:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.at))
        what = " ".join(x for x in (row.code, f"id {row.opportunity_id}" if row.opportunity_id else None) if x)
        status = f" HTTP {row.status}" if row.status else ""
        key = f" key {row.idem_key}" if row.idem_key else ""
        out.append(
            f"{stamp} {row.tool} {row.account} {row.outcome}{status} {what}{key} "
            f"{row.latency_ms or 0} ms {row.requests} req".replace("  ", " ")
        )
    return "\n".join(out) if out else "No writes yet."


def build_server(
    config: ServerConfig,
    tools: list[Tool] | None = None,
    journal: Journal | None = None,
    *,
    tokens: TokenVerifier | None = None,
    url: str = "http://127.0.0.1",
) -> MCPServer[State]:
    """The server for `config`; `tools` defaults to `build_tools(config)`. A `journal` passed in is
    the caller's to close; otherwise each run of the server opens the configured one and closes it.
    With `tokens`, HTTP calls need a bearer token and write only to the accounts it allows; `url` is
    where the server is reached (the SDK's auth settings want it)."""
    current: list[Journal] = [journal] if journal is not None else []

    @asynccontextmanager
    async def lifespan(_: MCPServer[State]) -> AsyncIterator[State]:
        store = journal or open_journal(config)
        current[:] = [store]
        try:
            async with AsyncExitStack() as stack:
                # One pooled HTTP client per base URL, shared by the accounts that live there.
                pools: dict[str, httpx2.AsyncClient] = {}
                for account in config.accounts:
                    if account.base_url not in pools:
                        pools[account.base_url] = await stack.enter_async_context(
                            make_http_client(account.base_url, config.http_timeout)
                        )
                # One limiter for every location: LeadConnector counts requests per location.
                limiter = RateLimiter(config.rate_limit, config.rate_window)
                yield State(
                    plazbot=tuple(PlazbotClient(a, pools[a.base_url]) for a in config.plazbot_accounts),
                    leadconnector=tuple(
                        LeadConnectorClient(a, pools[a.base_url], limiter=limiter, shapes=store)
                        for a in config.leadconnector_accounts
                    ),
                    journal=store,
                    secrets=config.secrets(),
                    call_budget=config.call_budget,
                    duplicate_window=config.duplicate_window,
                    open_access=tokens is None,
                )
        finally:
            if journal is None:
                store.close()

    auth = (
        None
        if tokens is None
        # Static tokens, no authorization server: nothing to advertise as resource metadata.
        else AuthSettings(issuer_url=AnyHttpUrl(url), resource_server_url=None)
    )
    server: MCPServer[State] = MCPServer(
        "opportunity-mcp",
        title="Opportunity MCP",
        version=__version__,
        instructions=INSTRUCTIONS,
        tools=build_tools(config) if tools is None else tools,
        lifespan=lifespan,
        auth=auth,
        token_verifier=tokens,
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
        rows = await current[0].recent(20 if tokens is None else 200)
        if tokens is not None:
            # A token sees the writes of the accounts it may write to, nobody else's.
            token = get_access_token()
            scopes = set(token.scopes) if token else set()
            mine = {a.target for a in config.accounts if "*" in scopes or a.name in scopes}
            rows = [row for row in rows if row.account in mine][:20]
        return journal_lines(rows)

    return server
