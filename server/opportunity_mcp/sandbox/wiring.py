"""The server's config for the sandbox: both CRM families, at the sandbox's URL, with its secrets."""

from __future__ import annotations

from pydantic import SecretStr

from opportunity_mcp.config import ServerConfig
from opportunity_mcp.crm.base import Account
from opportunity_mcp.sandbox.state import LC_LOCATION, LC_PIPELINE, LEADCONNECTOR_TOKEN, PLAZBOT_KEY, PLAZBOT_WORKSPACE


def sandbox_config(url: str) -> ServerConfig:
    return ServerConfig(
        accounts=(
            Account("plazbot", "sandbox-plazbot", url, SecretStr(PLAZBOT_KEY), PLAZBOT_WORKSPACE),
            Account(
                "leadconnector",
                "sandbox-leadconnector",
                url,
                SecretStr(LEADCONNECTOR_TOKEN),
                LC_LOCATION,
                options=(("pipeline_id", LC_PIPELINE),),
            ),
        ),
        sandbox=True,
    )
