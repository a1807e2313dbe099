"""Every class of upstream failure becomes a tool error in plain words, with the next step, for each
tool — injected into the sandbox over real loopback HTTP."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from typing import Any

import pytest
from mcp import Client

from server.app import build_server
from server.config import ServerConfig
from server.sandbox import Fault, SandboxState
from tests.conftest import assert_clean, text_of

pytestmark = pytest.mark.anyio

CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "plazbot.create": ("create_opportunity", {"name": "Deal", "description": "d", "amount": 10}),
    "plazbot.update": ("update_opportunity_field", {"opportunityId": "opp-1", "field": "amount", "value": 5}),
    "lc.upsert": ("upsert_opportunity", {"name": "Deal", "monetaryValue": 10}),
}
HTML = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
UNKNOWN_CREATE = "may or may not have been created: check the CRM before calling again"
UNKNOWN_UPDATE = "may or may not have been applied; calling again is safe"

# (fault, what the agent must read for a create, for an update; None: same as for a create)
MATRIX: list[tuple[str, Fault, str, str | None]] = [
    (
        "400",
        Fault(status=400, body=json.dumps({"statusCode": 400, "message": "Bad Request"})),
        "refused the values (HTTP 400): Bad Request. Nothing was written. Fix those values",
        None,
    ),
    (
        "401",
        Fault(status=401, body=json.dumps({"statusCode": 401, "message": "Invalid token", "error": "x"})),
        "refused the credentials (HTTP 401): Invalid token. The server's credentials are wrong",
        None,
    ),
    (
        "403",
        Fault(status=403, body=json.dumps({"statusCode": 403, "message": "No scope"})),
        "refused permission (HTTP 403): No scope. The server's credentials are wrong, expired or lack permission",
        None,
    ),
    (
        "404",
        Fault(status=404, body=json.dumps({"statusCode": 404, "message": "Not here"})),
        "did not find what the request names (HTTP 404): Not here. Nothing was written. Check the ids",
        None,
    ),
    (
        "422 list",
        Fault(status=422, body=json.dumps({"statusCode": 422, "message": ["a is bad", "b is bad"]})),
        "refused the values (HTTP 422): a is bad; b is bad. Nothing was written.",
        None,
    ),
    (
        "429 retry-after",
        Fault(status=429, headers={"Retry-After": "7"}),
        "is limiting the request rate (HTTP 429). Nothing was written. Wait 7 s and call again.",
        None,
    ),
    (
        "429 rate headers",
        Fault(status=429, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Interval-Milliseconds": "10000"}),
        "Wait 10 s and call again.",
        None,
    ),
    ("429 bare", Fault(status=429), "Wait a few seconds and call again.", None),
    (
        "500",
        Fault(status=500, body="{}"),
        f"failed on its side (HTTP 500). The opportunity {UNKNOWN_CREATE}",
        f"failed on its side (HTTP 500). The change {UNKNOWN_UPDATE}",
    ),
    (
        "502 html",
        Fault(status=502, body=HTML, content_type="text/html"),
        f"failed on its side (HTTP 502). The opportunity {UNKNOWN_CREATE}",
        f"The change {UNKNOWN_UPDATE}",
    ),
    ("503", Fault(status=503), "failed on its side (HTTP 503).", UNKNOWN_UPDATE),
    (
        "malformed json",
        Fault(status=200, body="{not json"),
        f"with a body that is not JSON. The opportunity {UNKNOWN_CREATE}",
        UNKNOWN_UPDATE,
    ),
    ("slow answer", Fault(delay=1.2), f"did not answer in time. The opportunity {UNKNOWN_CREATE}", UNKNOWN_UPDATE),
    ("dropped before read", Fault(drop="before"), "dropped before it answered", UNKNOWN_UPDATE),
    (
        "dropped after write",
        Fault(drop="after"),
        f"dropped before it answered. The opportunity {UNKNOWN_CREATE}",
        UNKNOWN_UPDATE,
    ),
]


@pytest.fixture
async def slow_client(config: ServerConfig) -> Any:
    async with Client(build_server(replace(config, http_timeout=0.5, call_budget=2.0)), mode="legacy") as client:
        yield client


@pytest.mark.parametrize("route", list(CALLS))
@pytest.mark.parametrize(("case", "fault", "for_create", "for_update"), MATRIX, ids=[m[0] for m in MATRIX])
async def test_upstream_fault_becomes_a_plain_tool_error(
    slow_client: Client,
    sandbox: SandboxState,
    route: str,
    case: str,
    fault: Fault,
    for_create: str,
    for_update: str | None,
) -> None:
    tool, arguments = CALLS[route]
    if route == "plazbot.update":
        sandbox.plazbot["opp-1"] = {
            "id": "opp-1",
            "workspaceId": "ws-sandbox",
            "amount": 1,
            "name": "x",
            "customFields": [],
        }
    sandbox.inject(replace(fault, route=route, times=100))  # the fault persists through retries
    result = await slow_client.call_tool(tool, arguments)
    assert result.is_error
    text = text_of(result)
    expected = for_update if (for_update and route == "plazbot.update") else for_create
    assert expected in text, text
    assert_clean(text)
    sent = len(sandbox.requests_to(route))
    if fault.drop == "before":
        assert sent == 0  # the connection closed before the sandbox read the request
    elif route != "plazbot.update" and fault.status != 429:
        assert sent == 1  # a create that may have reached the CRM is never sent again
    else:
        assert sent >= 1


async def test_plazbot_success_false_is_a_failure(client: Client, sandbox: SandboxState) -> None:
    body = {"success": False, "code": 200, "errorCode": "LIMIT", "message": "Límite de oportunidades", "data": None}
    sandbox.inject(Fault(route="plazbot.create", status=200, body=json.dumps(body)))
    result = await client.call_tool(*CALLS["plazbot.create"])
    assert result.is_error
    assert text_of(result) == (
        "Error executing tool create_opportunity: Plazbot reported a failure: Límite de oportunidades. "
        "Nothing was written."
    )


async def test_plazbot_success_false_with_a_client_code_maps_like_the_status(
    client: Client, sandbox: SandboxState
) -> None:
    body = {"success": False, "code": 404, "errorCode": "NF", "message": "Contacto no existe", "data": None}
    sandbox.inject(Fault(route="plazbot.create", status=200, body=json.dumps(body)))
    result = await client.call_tool(*CALLS["plazbot.create"])
    assert "did not find what the request names (HTTP 404): Contacto no existe" in text_of(result)


async def test_success_without_an_opportunity_is_not_reported_as_done(client: Client, sandbox: SandboxState) -> None:
    body = {"success": True, "code": 200, "errorCode": None, "message": "ok", "data": None}
    sandbox.inject(Fault(route="plazbot.create", status=200, body=json.dumps(body)))
    result = await client.call_tool(*CALLS["plazbot.create"])
    assert result.is_error
    assert "reported success but sent no opportunity" in text_of(result)


async def test_upsert_answer_without_new_is_not_reported_as_done(client: Client, sandbox: SandboxState) -> None:
    sandbox.inject(Fault(route="lc.upsert", status=200, body=json.dumps({"opportunity": {"id": "x"}})))
    result = await client.call_tool(*CALLS["lc.upsert"])
    assert result.is_error
    assert "did not say whether it created or updated" in text_of(result)


async def test_connection_refused_says_nothing_was_sent(config: ServerConfig, sandbox: SandboxState) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    assert config.plazbot is not None and config.leadconnector is not None
    nowhere = replace(
        config,
        plazbot=replace(config.plazbot, base_url=closed),
        leadconnector=replace(config.leadconnector, base_url=closed),
    )
    async with Client(build_server(nowhere), mode="legacy") as client:
        for tool, arguments in CALLS.values():
            result = await client.call_tool(tool, arguments)
            assert result.is_error
            assert "could not connect to" in text_of(result) and "Nothing was sent." in text_of(result)


@pytest.mark.parametrize(("route", "status"), [("plazbot.update", 503), ("lc.upsert", 429), ("plazbot.create", 429)])
async def test_a_passing_fault_is_retried_when_that_is_safe(
    client: Client, sandbox: SandboxState, route: str, status: int
) -> None:
    if route == "plazbot.update":
        sandbox.plazbot["opp-1"] = {"id": "opp-1", "workspaceId": "ws-sandbox", "amount": 1, "name": "x"}
    sandbox.inject(Fault(route=route, status=status, headers={"Retry-After": "0"}))
    tool, arguments = CALLS[route]
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    assert len(sandbox.requests_to(route)) == 2


async def test_a_create_is_not_resent_after_a_502(client: Client, sandbox: SandboxState) -> None:
    sandbox.inject(Fault(route="plazbot.create", status=502, apply=True))
    result = await client.call_tool(*CALLS["plazbot.create"])
    assert result.is_error and UNKNOWN_CREATE in text_of(result)
    assert len(sandbox.requests_to("plazbot.create")) == 1 and len(sandbox.plazbot) == 1
