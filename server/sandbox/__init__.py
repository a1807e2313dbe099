"""The embedded sandbox CRM: both upstream APIs on loopback, for `make run`, the tests and the
benchmarks. Nothing on the product path imports it except `server.main` wiring it in."""

from server.sandbox.runner import SandboxServer, serve_forever
from server.sandbox.state import (
    LC_LOCATION,
    LC_PIPELINE,
    LEADCONNECTOR_TOKEN,
    PLAZBOT_KEY,
    PLAZBOT_WORKSPACE,
    Fault,
    Options,
    SandboxState,
)

__all__ = [
    "LC_LOCATION",
    "LC_PIPELINE",
    "LEADCONNECTOR_TOKEN",
    "PLAZBOT_KEY",
    "PLAZBOT_WORKSPACE",
    "Fault",
    "Options",
    "SandboxServer",
    "SandboxState",
    "serve_forever",
]
