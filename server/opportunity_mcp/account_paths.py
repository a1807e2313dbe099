"""Per-account URLs: `/a/{account}/mcp` serves the MCP endpoint for that one account, so a person can
add two connectors for two accounts (a chat client takes one connector per URL). The request goes to
the same endpoint with the account noted for the tools (`tools.access.PATH_ACCOUNT`), which narrow
what the caller may reach to it; with OAuth each such URL has its own protected resource metadata,
and a 401 there points to it."""

from __future__ import annotations

import json
import re
from typing import Any

from mcp.server.transport_security import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opportunity_mcp.tools.access import PATH_ACCOUNT

_PATH = re.compile(r"/a/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})/mcp/?")
_METADATA = re.compile(r"/\.well-known/oauth-protected-resource/a/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})/mcp/?")


class AccountPaths:
    def __init__(self, app: ASGIApp, accounts: frozenset[str], public_url: str | None) -> None:
        self.app, self.accounts, self.public_url = app, accounts, public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        found = _PATH.fullmatch(path)
        if found is not None and found.group(1) in self.accounts:
            name = found.group(1)
            marked = PATH_ACCOUNT.set(name)
            try:
                await self.app({**scope, "path": "/mcp", "raw_path": b"/mcp"}, receive, self._pointing(send, name))
            finally:
                PATH_ACCOUNT.reset(marked)
            return
        meta = _METADATA.fullmatch(path) if self.public_url else None
        if meta is not None and meta.group(1) in self.accounts and scope["method"] == "GET":
            await _json(send, self.metadata(meta.group(1)))
            return
        await self.app(scope, receive, send)

    def metadata(self, name: str) -> dict[str, Any]:
        assert self.public_url is not None
        return {
            "resource": f"{self.public_url}/a/{name}/mcp",
            "authorization_servers": [self.public_url],
            "bearer_methods_supported": ["header"],
        }

    def _pointing(self, send: Send, name: str) -> Send:
        """A 401 from the endpoint names this URL's own resource metadata."""
        if self.public_url is None:
            return send
        own = f"{self.public_url}/.well-known/oauth-protected-resource/a/{name}/mcp".encode()

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                headers = [
                    (k, re.sub(rb'resource_metadata="[^"]*"', b'resource_metadata="' + own + b'"', v))
                    if k.lower() == b"www-authenticate"
                    else (k, v)
                    for k, v in message.get("headers", [])
                ]
                message = {**message, "headers": headers}
            await send(message)

        return wrapped


async def _json(send: Send, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})


OAUTH_PATHS = ("/.well-known/", "/authorize", "/token", "/register", "/revoke", "/oauth/")
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]")


OAUTH_BODY = 64 * 1024  # an OAuth request is a few hundred bytes


class OAuthHosts:
    """The OAuth endpoints under the MCP endpoint's Host rule (a request naming another host, DNS
    rebinding, gets 421, as the SDK answers it on /mcp) and a body limit of their own (413)."""

    def __init__(self, app: ASGIApp, hosts: tuple[str, ...]) -> None:
        self.app, self.hosts = app, hosts
        self.limited = RequestBodyLimitMiddleware(app, OAUTH_BODY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(OAUTH_PATHS):
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            if not any(host == h or (h.endswith(":*") and host.startswith(h[:-1])) for h in self.hosts):
                body = b"Invalid Host header"
                headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 421, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await self.limited(scope, receive, send)
            return
        await self.app(scope, receive, send)
