"""The HTTP application in memory: built by the app factory from a config, its lifespan run, and
requests sent through an ASGI transport (no socket, no process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from opportunity_mcp.config import ServerConfig
from opportunity_mcp.http_app import HttpOptions, build_http_app
from opportunity_mcp.journal import Journal, open_journal

BASE = "http://127.0.0.1:8765"
MCP_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}
PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


@asynccontextmanager
async def serving(
    config: ServerConfig, options: HttpOptions | None = None, journal: Journal | None = None
) -> AsyncIterator[httpx2.ASGITransport]:
    """A transport into the whole HTTP app (MCP endpoint, health, auth, guards) of `config`."""
    store = journal or open_journal(config.journal)
    app = build_http_app(config, store, options or HttpOptions())
    try:
        async with app.router.lifespan_context(app):
            yield httpx2.ASGITransport(app=app)
    finally:
        if journal is None:
            store.close()


def raw(transport: httpx2.ASGITransport, headers: dict[str, str] | None = None) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=transport, base_url=BASE, headers=headers or {}, timeout=30)


@asynccontextmanager
async def mcp_client(
    transport: httpx2.ASGITransport, headers: dict[str, str] | None = None, mode: str = "legacy"
) -> AsyncIterator[Client]:
    """An MCP client over streamable HTTP, through the transport, sending `headers` (a bearer token)."""
    async with (
        raw(transport, headers) as http,
        Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


class Alternating(httpx2.AsyncBaseTransport):
    """Each request to the next replica in turn: a fleet behind a load balancer with no affinity."""

    def __init__(self, *replicas: httpx2.ASGITransport) -> None:
        self.replicas, self.n, self.seen = replicas, 0, [0 for _ in replicas]

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        index = self.n % len(self.replicas)
        self.n += 1
        self.seen[index] += 1
        return await self.replicas[index].handle_async_request(request)
