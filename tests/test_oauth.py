"""OAuth 2.1 for chat clients that add the server by URL, end to end with the MCP SDK's own OAuth
client (discovery, registration, PKCE, refresh) against the HTTP app, two replicas behind one URL and
one journal database (SQLite, and PostgreSQL in the slow tier): the consent page is fetched and
submitted as a browser does, the tools answer with the issued token, only the connector code's
accounts are reachable, and the refusals the spec asks for hold."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from opportunity_mcp.config import ServerConfig, TokenGrant, token_digest
from opportunity_mcp.http_app import HttpOptions
from opportunity_mcp.journal import open_journal
from opportunity_mcp.sandbox import SandboxState
from tests.asgi import BASE, Alternating, serving
from tests.conftest import CANARY_KEY, COMMAND, text_of
from tests.npm_tools import PLAYWRIGHT, ROOT, npm_install

pytestmark = pytest.mark.anyio
CODE = "connector-sales-0123456789"  # what the operator hands out; only its SHA-256 is configured
CALLBACK = "http://127.0.0.1:33418/callback"
RESOURCE = f"{BASE}/mcp"
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}


@pytest.fixture
def oauth_config(config: ServerConfig, journal_target: str) -> ServerConfig:
    plazbot_only = TokenGrant("sales", token_digest(CODE), frozenset({"sandbox-plazbot"}), connector=True)
    return replace(config, tokens=(plazbot_only,), public_url=BASE, journal=journal_target)


@asynccontextmanager
async def fleet(config: ServerConfig) -> AsyncIterator[Alternating]:
    """Two replicas of the HTTP app on one journal database, every request to the next in turn."""
    options = HttpOptions(url=BASE, grants=config.tokens)
    one, two = open_journal(config.journal), open_journal(config.journal)
    try:
        async with serving(config, options, one) as a, serving(config, options, two) as b:
            yield Alternating(a, b)
    finally:
        one.close()
        two.close()


class Memory:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def consent(browser: httpx2.AsyncClient, url: str, code: str = CODE) -> httpx2.Response:
    """What a person does: open the page, type the code, submit (the browser sends its Origin)."""
    page = await browser.get(url, follow_redirects=True)  # /authorize sends the browser on to the page
    assert page.status_code == 200 and "Connector code" in page.text
    assert (
        page.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    sealed = re.search(r'name="request" value="([^"]+)"', page.text)
    assert sealed
    form = {"request": sealed.group(1).replace("&amp;", "&"), "code": code}
    return await browser.post("/oauth/consent", data=form, headers={"Origin": BASE})


def redirected(answer: httpx2.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_a_chat_client_connects_with_oauth_and_sees_only_its_accounts(
    oauth_config: ServerConfig, sandbox: SandboxState
) -> None:
    storage, landed = Memory(), {}
    async with fleet(oauth_config) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as browser:

        async def redirect_handler(url: str) -> None:
            landed.update(redirected(await consent(browser, url)))

        async def callback_handler() -> AuthorizationCodeResult:
            return AuthorizationCodeResult(code=landed["code"], state=landed["state"])

        metadata = OAuthClientMetadata(
            redirect_uris=[CALLBACK], client_name="Claude", token_endpoint_auth_method="none"
        )
        auth = OAuthClientProvider(RESOURCE, metadata, storage, redirect_handler, callback_handler)
        async with (
            httpx2.AsyncClient(transport=both, base_url=BASE, auth=auth, timeout=30) as http,
            Client(streamable_http_client(RESOURCE, http_client=http), mode="legacy") as client,
        ):
            names = [t.name for t in (await client.list_tools()).tools]
            made = await client.call_tool("create_opportunity", DEAL)
            assert not made.is_error and len(sandbox.plazbot) == 1, text_of(made)
            other = await client.call_tool("upsert_opportunity", {"name": "x", "monetaryValue": 1})
            assert other.is_error and sandbox.leadconnector == {}
        assert "create_opportunity" in names
        assert storage.tokens is not None and storage.tokens.scope == "sandbox-plazbot"
        assert min(both.seen) > 0  # both replicas served the flow

        # A refresh rotates: the new token works, the old refresh token is refused.
        assert storage.client is not None and storage.client.client_id is not None
        old = storage.tokens.refresh_token
        assert old is not None
        refresh = {"grant_type": "refresh_token", "refresh_token": old, "client_id": storage.client.client_id}
        fresh = await browser.post("/token", data=refresh)
        assert fresh.status_code == 200 and fresh.json()["access_token"] != storage.tokens.access_token
        again = await browser.post("/token", data=refresh)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

        # Revoked, the access token opens nothing.
        token = fresh.json()["access_token"]
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        mcp_headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {token}"}
        assert (await browser.post("/mcp", json=ping, headers=mcp_headers)).status_code == 200
        revoked = await browser.post(
            "/revoke", data={"token": token, "client_id": storage.client.client_id, "client_secret": ""}
        )
        assert revoked.status_code == 200, revoked.text
        # Revoking the refresh token revokes its access token too.
        pair = {
            "grant_type": "refresh_token",
            "refresh_token": fresh.json()["refresh_token"],
            "client_id": storage.client.client_id,
        }
        assert (await browser.post("/token", data=pair)).status_code == 400  # its pair went with the access token
        refused = await browser.post("/mcp", json=ping, headers=mcp_headers)
        assert refused.status_code == 401 and "resource_metadata=" in refused.headers["www-authenticate"]


async def test_the_metadata_is_where_clients_look(oauth_config: ServerConfig) -> None:
    async with fleet(oauth_config) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as http:
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            found = (await http.get(path)).json()
            # The issuer, character for character as the authorization server's metadata says it.
            assert found["resource"] == RESOURCE and found["authorization_servers"] == [BASE], found
        server = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert server["issuer"] == BASE
        assert server["code_challenge_methods_supported"] == ["S256"] and server["registration_endpoint"]
        unauthenticated = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert unauthenticated.status_code == 401


async def test_a_grant_goes_with_its_connector_code(oauth_config: ServerConfig) -> None:
    async with fleet(oauth_config) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as http:
        client_id = await register(http)
        verifier, challenge = pkce()
        page = await http.get((await authorize(http, client_id, challenge)).headers["location"])
        assert "After this you go back to <b>127.0.0.1:33418</b>" in page.text  # where the code goes
        tokens = (
            await http.post("/token", data=exchange(client_id, await a_code(http, client_id, challenge), verifier))
        ).json()
    # The operator rotated the leaked code: the same name, another code.
    rotated = TokenGrant(
        "sales", token_digest("another-code-0123456789"), frozenset({"sandbox-plazbot"}), connector=True
    )
    removed = replace(oauth_config, tokens=(rotated,))
    async with fleet(removed) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as http:
        headers = {"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json, text/event-stream"}
        answer = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers)
        assert answer.status_code == 401
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
        assert (await http.post("/token", data=refresh)).status_code == 400


# --- the refusals ------------------------------------------------------------------------------


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


async def register(http: httpx2.AsyncClient) -> str:
    answer = await http.post(
        "/register", json={"redirect_uris": [CALLBACK], "client_name": "Test", "token_endpoint_auth_method": "none"}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["client_id"])


async def authorize(http: httpx2.AsyncClient, client_id: str, challenge: str, **extra: str) -> httpx2.Response:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-1",
        "resource": RESOURCE,
        **extra,
    }
    return await http.get("/authorize", params=query)


async def a_code(http: httpx2.AsyncClient, client_id: str, challenge: str) -> str:
    sent = await authorize(http, client_id, challenge)
    assert sent.status_code == 302, sent.text
    return redirected(await consent(http, sent.headers["location"]))["code"]


def exchange(client_id: str, code: str, verifier: str) -> dict[str, Any]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": client_id,
        "code_verifier": verifier,
        "resource": RESOURCE,
    }


async def test_a_wrong_verifier_and_a_reused_code_are_refused(oauth_config: ServerConfig) -> None:
    async with fleet(oauth_config) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as http:
        client_id = await register(http)
        verifier, challenge = pkce()
        code = await a_code(http, client_id, challenge)
        wrong = await http.post("/token", data=exchange(client_id, code, pkce()[0]))
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        code = await a_code(http, client_id, challenge)
        first = await http.post("/token", data=exchange(client_id, code, verifier))
        assert first.status_code == 200 and first.json()["token_type"].lower() == "bearer"
        reused = await http.post("/token", data=exchange(client_id, code, verifier))  # the other replica
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


async def test_an_unregistered_redirect_and_another_resource_are_refused(oauth_config: ServerConfig) -> None:
    async with fleet(oauth_config) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as http:
        client_id = await register(http)
        _, challenge = pkce()
        stray = await authorize(http, client_id, challenge, redirect_uri="https://evil.example/callback")
        assert stray.status_code == 400 and "evil.example" not in stray.headers.get("location", "")
        elsewhere = await authorize(http, client_id, challenge, resource="https://other.example/mcp")
        assert "error=invalid_request" in elsewhere.headers.get("location", "") or elsewhere.status_code == 400
        no_state = await authorize(http, client_id, challenge, state="")
        assert no_state.status_code in (302, 400) and "code=" not in no_state.headers.get("location", "")


async def test_a_token_issued_for_another_resource_opens_nothing(oauth_config: ServerConfig) -> None:
    store = open_journal(oauth_config.journal)
    try:
        token = "oat_" + secrets.token_urlsafe(16)
        data = {"client_id": "c", "scopes": ["sandbox-plazbot"], "resource": "https://other.example/mcp"}
        await store.put_grant(hashlib.sha256(token.encode()).hexdigest(), "access", "c", data, 4e9)
    finally:
        store.close()
    async with fleet(oauth_config) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as http:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
        answer = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers)
        assert answer.status_code == 401


async def test_wrong_connector_codes_are_limited_per_client_and_address(oauth_config: ServerConfig) -> None:
    async with fleet(oauth_config) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as http:
        client_id = await register(http)
        _, challenge = pkce()
        url = (await authorize(http, client_id, challenge)).headers["location"]
        for _ in range(5):
            wrong = await consent(http, url, code="not-the-code-0000000")
            assert wrong.status_code == 400 and "That code is not right" in wrong.text
        blocked = await consent(http, url)  # even the right code, past the limit on either replica
        assert blocked.status_code == 429 and "Too many wrong codes" in blocked.text
        forged = await http.post("/oauth/consent", data={"request": "x.y", "code": CODE})
        assert forged.status_code == 400
        cross_site = await http.post(
            "/oauth/consent", data={"request": "x.y", "code": CODE}, headers={"Origin": "https://evil.example"}
        )
        assert cross_site.status_code == 403


def test_connectors_without_a_public_url_refuse_to_start(oauth_config: ServerConfig) -> None:
    from opportunity_mcp.config import ConfigError
    from opportunity_mcp.http_app import build_http_app

    store = open_journal(oauth_config.journal)
    try:
        with pytest.raises(ConfigError, match="OPPORTUNITY_MCP_PUBLIC_URL"):
            build_http_app(replace(oauth_config, public_url=None), store, HttpOptions(grants=oauth_config.tokens))
    finally:
        store.close()


async def test_a_connector_code_is_no_bearer_token(oauth_config: ServerConfig) -> None:
    async with fleet(oauth_config) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as http:
        headers = {"Authorization": f"Bearer {CODE}", "Accept": "application/json, text/event-stream"}
        answer = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers)
        assert answer.status_code == 401


@pytest.mark.slow
def test_a_person_connects_in_headless_chromium(sandbox_server: Any, sandbox: SandboxState, tmp_path: Path) -> None:
    """The consent page in a real browser, the server a real process: the code typed into the page
    comes back to the client as an authorization code, which buys a token that writes."""
    chromium, node = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("node")
    assert chromium and node, "Debian's chromium package and node are needed (make test installs them as root)"
    npm_install(tmp_path, PLAYWRIGHT)
    shutil.copy(ROOT / "tests" / "browser" / "consent.mjs", tmp_path / "consent.mjs")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    (tmp_path / "oauth.toml").write_text('[connectors.sales]\nenv = "SALES_CODE"\naccounts = ["plazbot"]\n')
    env = {
        **os.environ,
        "PLAZBOT_BASE_URL": sandbox_server.url,
        "PLAZBOT_API_KEY": CANARY_KEY,
        "PLAZBOT_WORKSPACE_ID": "ws-sandbox",
        "OPPORTUNITY_MCP_PUBLIC_URL": base,
        "OPPORTUNITY_MCP_JOURNAL": str(tmp_path / "journal.sqlite3"),
        "SALES_CODE": CODE,
    }
    argv = [COMMAND, "--transport", "http", "--port", str(port), "--config", str(tmp_path / "oauth.toml")]
    with subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as server:
        assert server.stderr is not None
        banner, deadline = "", time.monotonic() + 30
        while "listening on" not in banner and time.monotonic() < deadline and server.poll() is None:
            banner += server.stderr.readline()
        try:
            assert "listening on" in banner, banner
            with httpx2.Client(base_url=base, timeout=30) as http:
                registered = http.post(
                    "/register",
                    json={"redirect_uris": [CALLBACK], "client_name": "Claude", "token_endpoint_auth_method": "none"},
                )
                client_id = registered.json()["client_id"]
                verifier, challenge = pkce()
                query = {
                    "response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "state": "st-9",
                    "code_challenge": challenge, "code_challenge_method": "S256", "resource": f"{base}/mcp",
                }  # fmt: skip
                url = str(httpx2.URL(f"{base}/authorize", params=query))
                walked = subprocess.run(
                    [node, "consent.mjs", url, CODE, CALLBACK, chromium],
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert walked.returncode == 0, walked.stderr
                assert "title Connect Claude" in walked.stdout
                back = parse_qs(urlsplit(walked.stdout.split("back ", 1)[1].strip()).query)
                assert back["state"] == ["st-9"]
                data = {**exchange(client_id, back["code"][0], verifier), "resource": f"{base}/mcp"}
                token = http.post("/token", data=data).json()["access_token"]
            made = anyio.run(_create_with, f"{base}/mcp", token)
            assert not made.is_error, text_of(made)
            assert len(sandbox.plazbot) == 1
        finally:
            server.terminate()
            server.wait(timeout=10)


async def _create_with(url: str, token: str) -> Any:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        return await client.call_tool("create_opportunity", DEAL)


async def test_the_oauth_endpoints_keep_the_host_rule(oauth_config: ServerConfig) -> None:
    async with fleet(oauth_config) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as http:
        rebound = await http.get("/.well-known/oauth-authorization-server", headers={"Host": "evil.example"})
        assert rebound.status_code == 421
        token = await http.post("/token", data={"grant_type": "x"}, headers={"Host": "evil.example:8765"})
        assert token.status_code == 421
        assert (await http.get("/.well-known/oauth-authorization-server")).status_code == 200


async def test_the_oauth_endpoints_take_small_bodies_only(oauth_config: ServerConfig) -> None:
    async with fleet(oauth_config) as both, httpx2.AsyncClient(transport=both, base_url=BASE) as http:
        huge = await http.post(
            "/register", content=b"{" + b" " * 70_000 + b"}", headers={"Content-Type": "application/json"}
        )
        assert huge.status_code == 413
