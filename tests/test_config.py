"""Configuration from the environment, and the refusal to start without a CRM."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from opportunity_mcp.config import CRM_VARIABLES, ConfigError, load_config
from tests.conftest import CANARY_KEY

ALL_VARS = (*CRM_VARIABLES, "OPPORTUNITY_MCP_HTTP_TIMEOUT")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)


def test_plazbot_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAZBOT_API_KEY", CANARY_KEY)
    monkeypatch.setenv("PLAZBOT_WORKSPACE_ID", "ws-1")
    monkeypatch.setenv("PLAZBOT_BASE_URL", "https://apieu.wabotify.com/")
    config = load_config()
    plazbot = config.first("plazbot")
    assert config.first("leadconnector") is None and plazbot is not None
    assert plazbot.base_url == "https://apieu.wabotify.com"
    assert plazbot.target == "ws-1"
    assert plazbot.secret_source == "PLAZBOT_API_KEY"
    assert CANARY_KEY not in repr(config)
    assert config.secrets() == (CANARY_KEY,)


def test_leadconnector_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADCONNECTOR_TOKEN", "pit-x")
    monkeypatch.setenv("LEADCONNECTOR_LOCATION_ID", "loc-1")
    config = load_config()
    lc = config.first("leadconnector")
    assert config.first("plazbot") is None and lc is not None
    assert lc.base_url == "https://services.leadconnectorhq.com"
    assert lc.option("pipeline_id") is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "No CRM is configured."),
        ({"PLAZBOT_API_KEY": "k"}, "PLAZBOT_API_KEY is set but PLAZBOT_WORKSPACE_ID is missing."),
        (
            {"PLAZBOT_WORKSPACE_ID": "w"},
            "PLAZBOT_WORKSPACE_ID is set but PLAZBOT_API_KEY (or PLAZBOT_EMAIL + PLAZBOT_PASSWORD) is missing.",
        ),
        ({"LEADCONNECTOR_TOKEN": "t"}, "LEADCONNECTOR_TOKEN is set but LEADCONNECTOR_LOCATION_ID is missing."),
        ({"LEADCONNECTOR_LOCATION_ID": "l"}, "LEADCONNECTOR_LOCATION_ID is set but LEADCONNECTOR_TOKEN is missing."),
        ({"PLAZBOT_API_KEY": "k", "PLAZBOT_WORKSPACE_ID": "w", "PLAZBOT_BASE_URL": "ftp://x"}, "must start with"),
        ({"PLAZBOT_API_KEY": "", "PLAZBOT_WORKSPACE_ID": ""}, "No CRM is configured."),
    ],
)
def test_unusable_configuration_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert message in str(caught.value)


@pytest.mark.slow
def test_the_command_refuses_to_start_without_a_crm() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ALL_VARS}
    done = subprocess.run(
        [sys.executable, "-m", "opportunity_mcp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    for name in (
        "PLAZBOT_API_KEY",
        "PLAZBOT_WORKSPACE_ID",
        "LEADCONNECTOR_TOKEN",
        "LEADCONNECTOR_LOCATION_ID",
        "--sandbox",
    ):
        assert name in done.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PLAZBOT_BASE_URL": "http://api.plazbot.com"}, "http:// only for 127.0.0.1 or localhost"),
        ({"PLAZBOT_API_KEY": "two words"}, "printable ASCII without spaces"),
        ({"PLAZBOT_WORKSPACE_ID": "wsñ"}, "must be an id as the CRM shows it"),
    ],
)
def test_unsafe_values_are_refused_at_start(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    monkeypatch.setenv("PLAZBOT_API_KEY", "k")
    monkeypatch.setenv("PLAZBOT_WORKSPACE_ID", "w")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert message in str(caught.value)


def test_secrets_are_trimmed_and_loopback_http_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAZBOT_API_KEY", f"  {CANARY_KEY}\n")
    monkeypatch.setenv("PLAZBOT_WORKSPACE_ID", "w")
    monkeypatch.setenv("PLAZBOT_BASE_URL", "http://127.0.0.1:8766")
    config = load_config()
    plazbot = config.first("plazbot")
    assert plazbot is not None and plazbot.secret.get_secret_value() == CANARY_KEY
