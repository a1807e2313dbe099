"""Several accounts: the TOML config file, routing a call to the account it names, and the refusal
(with nothing sent) of an account the connection may not write to."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from mcp import Client
from pydantic import SecretStr

from opportunity_mcp.app import build_server
from opportunity_mcp.config import Account, ConfigError, ServerConfig, load_config, token_digest
from opportunity_mcp.sandbox import PLAZBOT_WORKSPACE, SandboxState
from tests.conftest import CANARY_KEY, assert_clean, text_of

pytestmark = pytest.mark.anyio
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200}
SECOND_KEY = "pk-second-workspace-0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def _two_workspaces(config: ServerConfig) -> ServerConfig:
    first = config.first("plazbot")
    assert first is not None
    second = Account("plazbot", "second", first.base_url, SecretStr(SECOND_KEY), "ws-sandbox-2")
    return replace(config, accounts=(*config.accounts, second))


async def test_a_call_goes_to_the_account_it_names_with_that_accounts_key(
    config: ServerConfig, sandbox: SandboxState
) -> None:
    sandbox.workspace_keys["ws-sandbox-2"] = SECOND_KEY
    async with Client(build_server(_two_workspaces(config)), mode="legacy") as client:
        result = await client.call_tool("create_opportunity", {**DEAL, "workspaceId": "ws-sandbox-2"})
        first = await client.call_tool("create_opportunity", {**DEAL, "workspaceId": PLAZBOT_WORKSPACE})
    assert result.structured_content and result.structured_content["account"] == "ws-sandbox-2"
    assert first.structured_content and first.structured_content["account"] == PLAZBOT_WORKSPACE
    second_sent, first_sent = sandbox.requests_to("plazbot.create")
    assert second_sent.headers["x-workspace-id"] == second_sent.body["workspaceId"] == "ws-sandbox-2"
    assert second_sent.headers["authorization"] == f"Bearer {SECOND_KEY}"
    assert first_sent.headers["authorization"] == f"Bearer {CANARY_KEY}"


async def test_an_account_that_is_not_configured_is_refused_and_nothing_is_sent(
    client: Client, sandbox: SandboxState
) -> None:
    result = await client.call_tool("create_opportunity", {**DEAL, "workspaceId": "ws-elsewhere"})
    upsert = await client.call_tool("upsert_opportunity", {"name": "x", "locationId": "loc-elsewhere"})
    assert result.is_error and upsert.is_error
    assert "workspaceId: not a workspace this connection may write to (allowed: ws-sandbox)" in text_of(result)
    assert "locationId: not a location this connection may write to (allowed: loc-sandbox)" in text_of(upsert)
    assert "nothing was sent" in text_of(result)
    assert sandbox.requests == []
    assert_clean(text_of(result))


async def test_with_several_accounts_the_call_must_say_which(config: ServerConfig, sandbox: SandboxState) -> None:
    async with Client(build_server(_two_workspaces(config)), mode="legacy") as client:
        result = await client.call_tool("create_opportunity", DEAL)
    assert result.is_error
    assert "workspaceId: required, since you may write to several: ws-sandbox, ws-sandbox-2" in text_of(result)
    assert sandbox.requests == []


CONFIG = """
[accounts.acme-wa]
crm = "plazbot"
base_url = "https://api.wabotify.com"
workspace_id = "ws-acme"
secret_env = "ACME_KEY"

[accounts.beta-hl]
crm = "leadconnector"
location_id = "loc-beta"
pipeline_id = "pipe-beta"
secret_env = "BETA_TOKEN"

[tokens.fleet]
sha256 = "{digest}"
accounts = ["acme-wa"]

[tokens.ops]
env = "OPS_TOKEN"
accounts = ["*"]
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("PLAZBOT_API_KEY", "PLAZBOT_WORKSPACE_ID", "LEADCONNECTOR_TOKEN", "LEADCONNECTOR_LOCATION_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACME_KEY", "pk-acme-0123456789")
    monkeypatch.setenv("BETA_TOKEN", "pit-beta-0123456789")
    monkeypatch.setenv("OPS_TOKEN", "omcp_ops-token-0123456789")
    path = tmp_path / "accounts.toml"
    path.write_text(CONFIG.replace("{digest}", token_digest("omcp_fleet-token-0123456789")))
    return path


def test_the_config_file_names_accounts_and_tokens(config_file: Path) -> None:
    config = load_config(str(config_file))
    assert [a.name for a in config.accounts] == ["acme-wa", "beta-hl"]
    acme, beta = config.accounts
    assert (acme.family, beta.family) == ("plazbot", "leadconnector")
    assert (acme.secret_source, beta.secret_source) == ("ACME_KEY", "BETA_TOKEN")
    assert (acme.base_url, acme.target, acme.secret.get_secret_value()) == (
        "https://api.wabotify.com",
        "ws-acme",
        "pk-acme-0123456789",
    )
    assert (beta.base_url, beta.target, beta.option("pipeline_id")) == (
        "https://services.leadconnectorhq.com",
        "loc-beta",
        "pipe-beta",
    )
    fleet, ops = config.tokens
    assert fleet.accounts == {"acme-wa"} and fleet.allows("acme-wa") and not fleet.allows("beta-hl")
    assert ops.digest == token_digest("omcp_ops-token-0123456789") and ops.allows("beta-hl")
    # Every secret the file points at is scrubbed from outgoing text; none is in the config's repr.
    assert {"pk-acme-0123456789", "pit-beta-0123456789", "omcp_ops-token-0123456789"} <= set(config.secrets())
    assert "0123456789" not in repr(config)


def test_the_single_account_variables_still_work_beside_the_file(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAZBOT_API_KEY", "pk-env-0123456789")
    monkeypatch.setenv("PLAZBOT_WORKSPACE_ID", "ws-env")
    monkeypatch.setenv("OPPORTUNITY_MCP_CONFIG", str(config_file))
    config = load_config()
    assert [(a.name, a.target) for a in config.accounts] == [
        ("acme-wa", "ws-acme"),
        ("beta-hl", "loc-beta"),
        ("plazbot", "ws-env"),
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("ACME_KEY", None), "accounts.acme-wa: the variable ACME_KEY (its secret) is not set"),
        (('crm = "plazbot"', 'crm = "hubspot"'), "accounts.acme-wa.crm: must be 'plazbot' or 'leadconnector'"),
        (('workspace_id = "ws-acme"', 'location_id = "ws-acme"'), "a plazbot account takes workspace_id"),
        (('base_url = "https://api.wabotify.com"', 'base_url = "http://api.wabotify.com"'), "must start with https://"),
        (('accounts = ["acme-wa"]', 'accounts = ["acme"]'), "tokens.fleet: no account is named acme"),
        (('env = "OPS_TOKEN"', 'env = "OPS_TOKEN"\nsha256 = "00"'), "tokens.ops"),
        (('secret_env = "ACME_KEY"', 'secret_env = "ACME_KEY"\napi_key = "pk-in-the-file"'), "secrets never go"),
        (('location_id = "loc-beta"', 'location_id = "ws-acme"\nworkspace_id = "x"'), "leadconnector account"),
        (("[tokens.ops]", "[accounts.beta-hl]"), "not valid TOML"),
    ],
)
def test_a_bad_config_file_names_what_to_fix(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, change: tuple[str, str | None], expected: str
) -> None:
    old, new = change
    if new is None:
        monkeypatch.delenv(old)
    else:
        config_file.write_text(config_file.read_text().replace(old, new, 1))
    with pytest.raises(ConfigError) as refused:
        load_config(str(config_file))
    assert expected in str(refused.value)
    assert "pk-in-the-file" not in str(refused.value) and "0123456789" not in str(refused.value)


def test_two_accounts_on_one_workspace_are_refused(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAZBOT_API_KEY", "pk-env-0123456789")
    monkeypatch.setenv("PLAZBOT_WORKSPACE_ID", "ws-acme")
    with pytest.raises(ConfigError, match="accounts 'acme-wa' and 'plazbot' both write to ws-acme"):
        load_config(str(config_file))


def test_a_config_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_bytes(b'[accounts.x]\ncrm = "plazbot\xff"\n')
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(str(path))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:pw@[::1/db", "does not parse"),
        ("mysql://u:pw@db/x", "must start with postgresql://"),
    ],
)
def test_a_bad_journal_url_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    monkeypatch.setenv("PLAZBOT_API_KEY", "pk-env-0123456789")
    monkeypatch.setenv("PLAZBOT_WORKSPACE_ID", "ws-env")
    monkeypatch.setenv("OPPORTUNITY_MCP_JOURNAL", url)
    with pytest.raises(ConfigError, match=expected) as refused:
        load_config()
    assert "pw" not in str(refused.value)


def test_journal_passwords_are_redacted_and_scrubbed() -> None:
    from opportunity_mcp.journal import redacted

    assert redacted("postgresql://u:hunter2@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert "hunter2" not in redacted("postgresql://u@db/x?password=hunter2&sslmode=require")
    assert "sslmode=require" in redacted("postgresql://u@db/x?password=hunter2&sslmode=require")
    assert redacted("postgresql://u:pw@[::1/db") == "postgresql://[a URL that does not parse]"
    config = ServerConfig(accounts=(), journal="postgresql://u@db/x?password=hunter2")
    assert "hunter2" in config.secrets()
