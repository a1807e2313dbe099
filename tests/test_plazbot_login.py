"""Plazbot by email and password: the server logs in (POST /api/user/login), keeps the token in
memory, renews it before it expires and after a 401, and never shows or logs it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ConfigError, ServerConfig, load_config
from opportunity_mcp.sandbox import PLAZBOT_EMAIL, PLAZBOT_PASSWORD, PLAZBOT_WORKSPACE, SandboxState
from tests.conftest import LOGIN_SOURCE as SOURCE
from tests.conftest import assert_clean, login_config, text_of

pytestmark = pytest.mark.anyio
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}


def _bearers(sandbox: SandboxState, route: str) -> list[str]:
    return [r.headers["authorization"].removeprefix("Bearer ") for r in sandbox.requests_to(route)]


async def test_it_logs_in_once_and_writes_with_the_token(config: ServerConfig, sandbox: SandboxState) -> None:
    async with Client(build_server(login_config(config)), mode="legacy") as client:
        first = await client.call_tool("create_opportunity", DEAL)
        second = await client.call_tool("create_opportunity", {**DEAL, "name": "Otro"})
    assert not first.is_error and not second.is_error, text_of(first)
    (login,) = sandbox.requests_to("plazbot.login")
    assert login.body == {"email": PLAZBOT_EMAIL, "password": PLAZBOT_PASSWORD}
    assert "authorization" not in login.headers
    (token,) = set(sandbox.plazbot_tokens)
    assert _bearers(sandbox, "plazbot.create") == [token, token]
    assert second.structured_content is not None and second.structured_content["account"] == PLAZBOT_WORKSPACE


async def test_a_401_renews_the_token_once_and_the_write_lands(
    config: ServerConfig, sandbox: SandboxState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Client(build_server(login_config(config)), mode="legacy") as client:
        await client.call_tool("create_opportunity", DEAL)
        old = set(sandbox.plazbot_tokens)
        sandbox.expire_tokens()  # the CRM forgets the session: the next request gets 401
        renewed = await client.call_tool("create_opportunity", {**DEAL, "name": "Después"})
        journal = (await client.read_resource("journal://recent")).contents[0].text  # type: ignore[union-attr]
    assert not renewed.is_error, text_of(renewed)
    assert len(sandbox.requests_to("plazbot.login")) == 2
    (new,) = set(sandbox.plazbot_tokens)
    creates = _bearers(sandbox, "plazbot.create")
    assert creates == [*old, *old, new]  # the refused one, then the same write with the new token
    assert len(sandbox.plazbot) == 2  # one deal per call: the refused request wrote nothing
    assert journal.splitlines()[0].endswith("3 req")  # login, refused create, create
    for token in (*old, new):
        assert token not in caplog.text and token not in text_of(renewed) and token not in journal


async def test_a_token_near_its_end_is_renewed_before_it_is_used(config: ServerConfig, sandbox: SandboxState) -> None:
    sandbox.options.plazbot_login_shape = "expires"  # Wabotify's answer: data.expiresIn
    sandbox.options.plazbot_token_seconds = 30  # less than the minute kept in hand
    async with Client(build_server(login_config(config)), mode="legacy") as client:
        for n in range(3):
            assert not (await client.call_tool("create_opportunity", {**DEAL, "name": f"D{n}"})).is_error
    assert len(sandbox.requests_to("plazbot.login")) == 3
    assert len(sandbox.requests_to("plazbot.create")) == 3  # none refused: each went with a fresh token


async def test_wrong_credentials_say_which_variables_and_write_nothing(
    config: ServerConfig, sandbox: SandboxState
) -> None:
    async with Client(build_server(login_config(config, password="not-the-password")), mode="legacy") as client:
        refused = await client.call_tool("create_opportunity", DEAL)
    assert refused.is_error
    text = text_of(refused)
    assert "refused the credentials (HTTP 401): 'Invalid credentials." in text
    assert f"check {SOURCE}" in text and "retrying will not help" in text
    assert "not-the-password" not in text
    assert_clean(text)
    assert sandbox.requests_to("plazbot.create") == []


def test_the_variables_configure_a_login(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLAZBOT_API_KEY", "LEADCONNECTOR_TOKEN", "LEADCONNECTOR_LOCATION_ID", "OPPORTUNITY_MCP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLAZBOT_EMAIL", PLAZBOT_EMAIL)
    monkeypatch.setenv("PLAZBOT_PASSWORD", PLAZBOT_PASSWORD)
    monkeypatch.setenv("PLAZBOT_WORKSPACE_ID", "ws-1")
    monkeypatch.setenv("PLAZBOT_BASE_URL", "https://apieu.plazbot.com")
    (account,) = load_config().accounts
    assert (account.option("email"), account.secret.get_secret_value()) == (PLAZBOT_EMAIL, PLAZBOT_PASSWORD)
    assert account.secret_source == SOURCE and account.base_url == "https://apieu.plazbot.com"
    assert PLAZBOT_PASSWORD in load_config().secrets()
    monkeypatch.setenv("PLAZBOT_API_KEY", "pk-also-0123456789")
    with pytest.raises(ConfigError, match="set either PLAZBOT_API_KEY or PLAZBOT_EMAIL \\+ PLAZBOT_PASSWORD"):
        load_config()
    monkeypatch.delenv("PLAZBOT_API_KEY")
    monkeypatch.delenv("PLAZBOT_PASSWORD")
    with pytest.raises(ConfigError, match="PLAZBOT_EMAIL and PLAZBOT_PASSWORD go together"):
        load_config()


def test_a_config_file_account_can_log_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLAZBOT_API_KEY", "PLAZBOT_WORKSPACE_ID", "PLAZBOT_EMAIL", "PLAZBOT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACME_PASSWORD", "acme-password-0123")
    path = tmp_path / "accounts.toml"
    path.write_text(
        '[accounts.acme]\ncrm = "plazbot"\nworkspace_id = "ws-acme"\nemail = "bot@acme.example"\n'
        'secret_env = "ACME_PASSWORD"\n'
    )
    (account,) = load_config(str(path)).accounts
    assert account.option("email") == "bot@acme.example" and account.secret_source == "ACME_PASSWORD"
    path.write_text(path.read_text().replace("bot@acme.example", "not an email"))
    with pytest.raises(ConfigError, match=r"accounts\.acme\.email: must be the email address you log in with"):
        load_config(str(path))
