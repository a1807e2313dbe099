"""The embedded sandbox CRM: both upstream APIs on loopback, for `make run`, the tests and the
benchmarks. Nothing on the product path imports it except `opportunity_mcp.cli` wiring it in."""

from opportunity_mcp.sandbox.runner import SandboxServer, serve_forever
from opportunity_mcp.sandbox.state import (
    LC_LOCATION,
    LC_PIPELINE,
    LEADCONNECTOR_TOKEN,
    PLAZBOT_EMAIL,
    PLAZBOT_KEY,
    PLAZBOT_PASSWORD,
    PLAZBOT_WORKSPACE,
    Fault,
    Options,
    SandboxState,
)
from opportunity_mcp.sandbox.wiring import sandbox_config

__all__ = [
    "LC_LOCATION",
    "LC_PIPELINE",
    "LEADCONNECTOR_TOKEN",
    "PLAZBOT_EMAIL",
    "PLAZBOT_KEY",
    "PLAZBOT_PASSWORD",
    "PLAZBOT_WORKSPACE",
    "Fault",
    "Options",
    "SandboxServer",
    "SandboxState",
    "sandbox_config",
    "serve_forever",
]
