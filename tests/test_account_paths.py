"""Per-account URLs: /a/{account}/mcp serves that one account, so one person can add two connectors
for two accounts; with OAuth each URL has its own resource metadata, a 401 there points to it, and
a connector code that does not open that account is refused on the consent page."""

from __future__ import annotations

from dataclasses import replace

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from opportunity_mcp.config import ServerConfig, TokenGrant, token_digest
from opportunity_mcp.http_app import HttpOptions
from opportunity_mcp.sandbox import SandboxState
from tests.asgi import BASE, serving
from tests.conftest import text_of
from tests.test_oauth import CALLBACK, CODE, DEAL, Memory, consent, fleet, redirected

pytestmark = pytest.mark.anyio
LC = f"{BASE}/a/sandbox-leadconnector/mcp"
PLAZBOT = f"{BASE}/a/sandbox-plazbot/mcp"


async def test_an_account_url_reaches_that_account_only(config: ServerConfig, sandbox: SandboxState) -> None:
    ops = "ops-token-0123456789abcdef"
    grants = (TokenGrant("ops", token_digest(ops), frozenset({"*"})),)
    async with (
        serving(config, HttpOptions(url=BASE, grants=grants)) as transport,
        httpx2.AsyncClient(transport=transport, base_url=BASE, headers={"Authorization": f"Bearer {ops}"}) as http,
        Client(streamable_http_client(LC, http_client=http), mode="legacy") as client,
    ):
        refused = await client.call_tool("create_opportunity", DEAL)
        assert refused.is_error and "Not allowed" in text_of(refused) and sandbox.plazbot == {}
        made = await client.call_tool("upsert_opportunity", {"name": "Plan anual", "monetaryValue": 10})
        assert not made.is_error and len(sandbox.leadconnector) == 1, text_of(made)
        found = await client.call_tool("find_opportunities", {"name": "Plan anual"})  # no accountId needed here
        assert not found.is_error and "loc-sandbox" in text_of(found), text_of(found)
        unknown = await http.post(f"{BASE}/a/nobody/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert unknown.status_code == 404


@pytest.fixture
def two_codes(config: ServerConfig, journal_target: str) -> ServerConfig:
    both = TokenGrant("both", token_digest(CODE), frozenset({"*"}), connector=True)
    lc_only = TokenGrant(
        "lc", token_digest("lc-only-code-0123456789"), frozenset({"sandbox-leadconnector"}), connector=True
    )
    return replace(config, tokens=(both, lc_only), public_url=BASE, journal=journal_target)


async def test_a_connector_for_one_account_url(two_codes: ServerConfig, sandbox: SandboxState) -> None:
    storage, landed = Memory(), {}
    async with fleet(two_codes) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as browser:
        challenge = await browser.post(PLAZBOT, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert challenge.status_code == 401
        assert "/.well-known/oauth-protected-resource/a/sandbox-plazbot/mcp" in challenge.headers["www-authenticate"]
        meta = (await browser.get("/.well-known/oauth-protected-resource/a/sandbox-plazbot/mcp")).json()
        assert meta["resource"] == PLAZBOT

        async def redirect_handler(url: str) -> None:
            wrong = await consent(browser, url, code="lc-only-code-0123456789")  # opens another account only
            assert wrong.status_code == 403 and "does not open the account of this URL" in wrong.text
            landed.update(redirected(await consent(browser, url)))

        async def callback_handler() -> AuthorizationCodeResult:
            return AuthorizationCodeResult(code=landed["code"], state=landed["state"])

        metadata = OAuthClientMetadata(
            redirect_uris=[CALLBACK], client_name="Claude", token_endpoint_auth_method="none"
        )
        auth = OAuthClientProvider(PLAZBOT, metadata, storage, redirect_handler, callback_handler)
        async with (
            httpx2.AsyncClient(transport=both, base_url=BASE, auth=auth, timeout=30) as http,
            Client(streamable_http_client(PLAZBOT, http_client=http), mode="legacy") as client,
        ):
            made = await client.call_tool("create_opportunity", DEAL)
            assert not made.is_error and len(sandbox.plazbot) == 1, text_of(made)
    # The code opens every account, but this connection was made for one.
    assert storage.tokens is not None and storage.tokens.scope == "sandbox-plazbot"
