"""An external identity provider (Auth0, Keycloak, Entra) instead of the server's own: its JWT access
tokens are checked against its JWKS (served here on loopback, as the provider would), its issuer and
the audience for this server, and mapped to accounts by a claim. Static tokens keep working."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from opportunity_mcp.config import ServerConfig, TokenGrant, token_digest
from opportunity_mcp.http_app import HttpOptions
from opportunity_mcp.sandbox import SandboxState
from tests.asgi import BASE, serving
from tests.conftest import text_of

pytestmark = pytest.mark.anyio
ISSUER, AUDIENCE = "https://idp.example/", f"{BASE}/mcp"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}
FETCHES: list[float] = []


@pytest.fixture(scope="module")
def jwks() -> Iterator[str]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


def token(**claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "maria", "exp": now + 600, "iat": now, **claims}
    return jwt.encode(body, KEY, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def identity(config: ServerConfig, jwks: str, monkeypatch: pytest.MonkeyPatch) -> ServerConfig:
    monkeypatch.setenv("OPPORTUNITY_MCP_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("OPPORTUNITY_MCP_JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("OPPORTUNITY_MCP_JWT_JWKS_URL", jwks)
    return replace(config, public_url=BASE)


async def test_a_providers_token_writes_to_the_accounts_its_claim_names(
    identity: ServerConfig, sandbox: SandboxState
) -> None:
    headers = {"Authorization": f"Bearer {token(opportunity_accounts=['sandbox-plazbot'])}"}
    async with (
        serving(identity, HttpOptions(url=BASE)) as transport,
        httpx2.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http,
        Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode="legacy") as client,
    ):
        made = await client.call_tool("create_opportunity", DEAL)
        assert not made.is_error and len(sandbox.plazbot) == 1, text_of(made)
        other = await client.call_tool("upsert_opportunity", {"name": "x", "monetaryValue": 1})
        assert other.is_error and sandbox.leadconnector == {}
        meta = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
        assert meta["authorization_servers"] == [ISSUER] and meta["resource"] == AUDIENCE


@pytest.mark.parametrize(
    "bad",
    [
        token(aud="https://another.example/mcp", opportunity_accounts="sandbox-plazbot"),
        token(iss="https://evil.example/", opportunity_accounts="sandbox-plazbot"),
        token(exp=int(time.time()) - 3600, opportunity_accounts="sandbox-plazbot"),
        token(opportunity_accounts=["someone-else"]),
        token(),
        jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": 4e9, "opportunity_accounts": "*"}, "s" * 32, "HS256"),
        jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": 4e9, "opportunity_accounts": "*"}, None, "none"),  # type: ignore[arg-type]
        token(opportunity_accounts="*")[:-4] + "abcd",
        token(opportunity_accounts="*", nonce="n-1"),
        jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "exp": 4e9, "opportunity_accounts": "*"},
            ec.generate_private_key(ec.SECP256R1()),
            "ES256",
            headers={"kid": "k1"},
        ),
    ],
    ids=[
        "audience",
        "issuer",
        "expired",
        "unknown account",
        "no claim",
        "HS256",
        "none",
        "signature",
        "id token",
        "key type",
    ],
)
async def test_a_token_that_does_not_hold_is_refused(identity: ServerConfig, bad: str) -> None:
    async with serving(identity, HttpOptions(url=BASE)) as transport, httpx2.AsyncClient(transport=transport) as http:
        answer = await http.post(
            f"{BASE}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {bad}", "Accept": "application/json, text/event-stream"},
        )
    assert answer.status_code == 401


async def test_static_tokens_keep_working_beside_it(identity: ServerConfig, sandbox: SandboxState) -> None:
    ops = "ops-token-0123456789abcdef"
    grants = (TokenGrant("ops", token_digest(ops), frozenset({"*"})),)
    async with (
        serving(identity, HttpOptions(url=BASE, grants=grants)) as transport,
        httpx2.AsyncClient(transport=transport) as http,
    ):
        answer = await http.post(
            f"{BASE}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {ops}", "Accept": "application/json, text/event-stream"},
        )
    assert answer.status_code == 200


def test_half_the_settings_refuse_to_start(config: ServerConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    from opportunity_mcp.config import ConfigError
    from opportunity_mcp.http_app import build_http_app
    from opportunity_mcp.journal import open_journal

    monkeypatch.setenv("OPPORTUNITY_MCP_JWT_ISSUER", ISSUER)
    store = open_journal(config.journal)
    try:
        with pytest.raises(ConfigError, match="go together"):
            build_http_app(config, store, HttpOptions())
    finally:
        store.close()


async def test_unknown_key_ids_cannot_make_it_fetch_the_keys_again_and_again(identity: ServerConfig) -> None:
    async with serving(identity, HttpOptions(url=BASE)) as transport, httpx2.AsyncClient(transport=transport) as http:
        before = len(FETCHES)
        for n in range(12):
            forged = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": 4e9}, KEY, "RS256", headers={"kid": f"k-{n}"})
            answer = await http.post(
                f"{BASE}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Authorization": f"Bearer {forged}", "Accept": "application/json, text/event-stream"},
            )
            assert answer.status_code == 401
    assert len(FETCHES) - before <= 1  # the first look; then at most one a minute
