"""Every class of upstream failure becomes a tool error in plain words, with the next step, for each
tool — injected into the sandbox over real loopback HTTP."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
from dataclasses import dataclass, replace
from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.sandbox import Fault, SandboxState
from tests.conftest import CANARY_KEY, CANARY_TOKEN, assert_clean, text_of

pytestmark = pytest.mark.anyio

CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "plazbot.create": ("create_opportunity", {"name": "Deal", "description": "d", "amount": 10}),
    "plazbot.update": ("update_opportunity_field", {"opportunityId": "opp-1", "field": "amount", "value": 5}),
    "lc.upsert": ("upsert_opportunity", {"name": "Deal", "monetaryValue": 10}),
}
HTML = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
UNKNOWN_CREATE = "may or may not have been created: check the CRM before calling again"
UNKNOWN_UPDATE = "may or may not have been applied; calling again is safe"

SUCCESS_FALSE = json.dumps({"success": False, "code": 200, "errorCode": "E", "message": "No se pudo", "data": None})


def unreadable(sandbox: SandboxState) -> None:
    """A lost answer is read back (tests/test_read_back.py); here the CRM cannot be read, so the
    outcome stays unknown and the texts for it are what is checked."""
    for route in ("plazbot.list", "plazbot.get", "lc.search", "lc.get"):
        sandbox.inject(Fault(route=route, status=403, times=100))


@dataclass(frozen=True)
class Case:
    """One upstream fault and what must follow: the agent's text, the journal's verdict, and how many
    requests reached the sandbox (None: retried a number of times that depends on timing)."""

    name: str
    fault: Fault
    text: str
    journal: str
    requests: int | None
    # For the idempotent update, where it differs:
    update_text: str | None = None
    update_journal: str | None = None
    update_requests: int | None = -1


MATRIX = [
    Case(
        "401",
        Fault(status=401, body=json.dumps({"statusCode": 401, "message": "Invalid token", "error": "x"})),
        "refused the credentials (HTTP 401): 'Invalid token'. The server's credentials are wrong",
        "failed",
        1,
    ),
    Case(
        "403",
        Fault(status=403, body=json.dumps({"statusCode": 403, "message": "No scope"})),
        "refused permission (HTTP 403): 'No scope'. The server's credentials are wrong, expired or lack permission",
        "failed",
        1,
    ),
    Case(
        "404",
        Fault(status=404, body=json.dumps({"statusCode": 404, "message": "Not here"})),
        "did not find what the request names (HTTP 404): 'Not here'. Nothing was written. Check the ids",
        "failed",
        1,
    ),
    Case(
        "400",
        Fault(status=400, body=json.dumps({"statusCode": 400, "message": "Bad Request"})),
        "refused the values (HTTP 400): 'Bad Request'. Nothing was written. Fix those values",
        "failed",
        1,
    ),
    Case(
        "422 list",
        Fault(status=422, body=json.dumps({"statusCode": 422, "message": ["a is bad", "b is bad"]})),
        "refused the values (HTTP 422): 'a is bad'; 'b is bad'. Nothing was written.",
        "failed",
        1,
    ),
    Case(
        "429 retry-after past budget",
        Fault(status=429, headers={"Retry-After": "7"}),
        "is limiting the request rate (HTTP 429). Nothing was written. Wait 7 s and call again.",
        "failed",
        1,
    ),
    Case(
        "429 rate headers",
        Fault(status=429, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Interval-Milliseconds": "10000"}),
        "Wait 10 s and call again.",
        "failed",
        1,
    ),
    Case("429 without retry-after", Fault(status=429), "Wait a few seconds and call again.", "failed", 4),
    Case(
        "500",
        Fault(status=500, body="{}"),
        f"failed on its side (HTTP 500). The opportunity {UNKNOWN_CREATE}",
        "unknown",
        1,
        f"failed on its side (HTTP 500). The change {UNKNOWN_UPDATE}",
        "unknown",
        1,
    ),
    Case(
        "502 html",
        Fault(status=502, body=HTML, content_type="text/html"),
        f"failed on its side (HTTP 502). The opportunity {UNKNOWN_CREATE}",
        "unknown",
        1,
        f"The change {UNKNOWN_UPDATE}",
        "unknown",
        4,
    ),
    Case(
        "503",
        Fault(status=503),
        f"failed on its side (HTTP 503). The opportunity {UNKNOWN_CREATE}",
        "unknown",
        1,
        UNKNOWN_UPDATE,
        "unknown",
        4,
    ),
    Case(
        "malformed json",
        Fault(status=200, body="{not json"),
        f"with a body that is not JSON. The opportunity {UNKNOWN_CREATE}",
        "unknown",
        1,
        UNKNOWN_UPDATE,
        "unknown",
        1,
    ),
    Case("success false", Fault(status=200, body=SUCCESS_FALSE), "", "", 1),  # per CRM, see below
    Case(
        "slow answer",
        Fault(delay=1.2),
        f"did not answer in time. The opportunity {UNKNOWN_CREATE}",
        "unknown",
        1,
        UNKNOWN_UPDATE,
        "unknown",
        None,
    ),
    Case(
        "dropped before read",
        Fault(drop="before"),
        f"dropped before it answered. The opportunity {UNKNOWN_CREATE}",
        "unknown",
        0,
        UNKNOWN_UPDATE,
        "unknown",
        0,
    ),
    Case(
        "dropped after write",
        Fault(drop="after"),
        f"dropped before it answered. The opportunity {UNKNOWN_CREATE}",
        "unknown",
        1,
        UNKNOWN_UPDATE,
        "unknown",
        4,
    ),
]


@pytest.fixture
async def slow_client(config: ServerConfig) -> Any:
    async with Client(build_server(replace(config, http_timeout=0.5, call_budget=2.0)), mode="legacy") as client:
        yield client


def _expectations(case: Case, route: str) -> tuple[str, str, int | None]:
    if case.name == "success false":
        if route == "lc.upsert":  # no opportunity and no `new` in the answer: nothing to trust
            return f"answered without the opportunity it upserted. The opportunity {UNKNOWN_CREATE}", "unknown", 1
        return "Plazbot reported a failure: 'No se pudo'. Nothing was written.", "failed", 1
    if route == "plazbot.update" and case.update_text is not None:
        requests = case.requests if case.update_requests == -1 else case.update_requests
        return case.update_text, case.update_journal or case.journal, requests
    if route == "plazbot.update" and case.update_requests != -1:
        return case.text, case.journal, case.update_requests
    return case.text, case.journal, case.requests


@pytest.mark.parametrize("route", list(CALLS))
@pytest.mark.parametrize("case", MATRIX, ids=[c.name for c in MATRIX])
async def test_fault_matrix(
    slow_client: Client,
    sandbox: SandboxState,
    config: ServerConfig,
    caplog: pytest.LogCaptureFixture,
    route: str,
    case: Case,
) -> None:
    """For each tool and fault: the agent's text, the requests sent, the journal's verdict, no leak."""
    caplog.set_level(logging.DEBUG)
    tool, arguments = CALLS[route]
    if route == "plazbot.update":
        sandbox.plazbot["opp-1"] = {
            "id": "opp-1",
            "workspaceId": "ws-sandbox",
            "amount": 1,
            "name": "x",
            "customFields": [],
        }
    sandbox.inject(replace(case.fault, route=route, times=100))  # the fault persists through retries
    unreadable(sandbox)
    result = await slow_client.call_tool(tool, arguments)
    text_expected, journal_expected, requests_expected = _expectations(case, route)

    assert result.is_error
    text = text_of(result)
    assert text_expected in text, text
    sent = len(sandbox.requests_to(route))
    if requests_expected is None:
        assert sent >= 2
    else:
        assert sent == requests_expected
    with sqlite3.connect(config.journal) as db:
        rows = db.execute("SELECT outcome, requests, envelope FROM writes").fetchall()
    assert [r[0] for r in rows] == [journal_expected]
    assert rows[0][2] is None  # no envelope for a write that was not confirmed
    assert_clean(text)
    for where in (caplog.text, repr(rows)):
        assert CANARY_KEY not in where and CANARY_TOKEN not in where


async def test_plazbot_success_false_is_a_failure(client: Client, sandbox: SandboxState) -> None:
    body = {"success": False, "code": 200, "errorCode": "LIMIT", "message": "Límite de oportunidades", "data": None}
    sandbox.inject(Fault(route="plazbot.create", status=200, body=json.dumps(body)))
    result = await client.call_tool(*CALLS["plazbot.create"])
    assert result.is_error
    assert text_of(result) == (
        "Error executing tool create_opportunity: Plazbot reported a failure: 'Límite de oportunidades'. "
        "Nothing was written."
    )


async def test_plazbot_success_false_with_a_client_code_maps_like_the_status(
    client: Client, sandbox: SandboxState
) -> None:
    body = {"success": False, "code": 404, "errorCode": "NF", "message": "Contacto no existe", "data": None}
    sandbox.inject(Fault(route="plazbot.create", status=200, body=json.dumps(body)))
    result = await client.call_tool(*CALLS["plazbot.create"])
    assert "did not find what the request names (HTTP 404): 'Contacto no existe'" in text_of(result)


async def test_success_without_an_opportunity_is_not_reported_as_done(client: Client, sandbox: SandboxState) -> None:
    body = {"success": True, "code": 200, "errorCode": None, "message": "ok", "data": None}
    unreadable(sandbox)
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
    nowhere = replace(config, accounts=tuple(replace(a, base_url=closed) for a in config.accounts))
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
    sandbox.inject(Fault(route="plazbot.list", status=403, times=100))  # read-back fails: test_read_back.py
    result = await client.call_tool(*CALLS["plazbot.create"])
    assert result.is_error and UNKNOWN_CREATE in text_of(result)
    assert len(sandbox.requests_to("plazbot.create")) == 1 and len(sandbox.plazbot) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"success": False, "code": 500, "errorCode": "E", "message": "NullReferenceException at X", "data": None},
            f"reported an internal failure (code 500). The opportunity {UNKNOWN_CREATE}",
        ),
        ({"code": 200, "message": "ok", "data": {"id": "x"}}, "answered without its success flag"),
        ({"success": "true", "code": 200, "data": {"id": "x"}}, "answered without its success flag"),
    ],
)
async def test_plazbot_envelopes_that_do_not_say_success_are_not_done(
    client: Client, sandbox: SandboxState, config: ServerConfig, body: dict[str, Any], expected: str
) -> None:
    sandbox.inject(Fault(route="plazbot.create", status=200, body=json.dumps(body), apply=True))
    sandbox.inject(Fault(route="plazbot.list", status=403, times=100))  # read-back fails: test_read_back.py
    result = await client.call_tool(*CALLS["plazbot.create"])
    assert result.is_error and expected in text_of(result)
    assert "NullReference" not in text_of(result)
    with sqlite3.connect(config.journal) as db:
        assert db.execute("SELECT outcome FROM writes").fetchall() == [("unknown",)]


async def test_odd_numbers_and_huge_bodies_do_not_crash(client: Client, sandbox: SandboxState) -> None:
    huge_int = {"success": True, "code": 200, "data": {"id": "x1", "opportunity": {"id": "x1", "amount": 10**400}}}
    sandbox.inject(Fault(route="plazbot.create", status=200, body=json.dumps(huge_int)))
    result = await client.call_tool(*CALLS["plazbot.create"])
    assert not result.is_error and result.structured_content == {
        "ok": True,
        "action": "created",
        "account": "ws-sandbox",
        "id": "x1",
        "warnings": [],
    }
    sandbox.inject(Fault(route="plazbot.create", status=200, body='{"pad": "' + "x" * (2 << 20) + '"}'))
    unreadable(sandbox)
    result = await client.call_tool("create_opportunity", {**CALLS["plazbot.create"][1], "name": "other"})
    assert result.is_error and "sent an answer too large to be an opportunity" in text_of(result)


@pytest.mark.parametrize("value", ["nan", "-5", "1e400", "inf"])
async def test_nonsense_retry_after_falls_back_to_backoff(
    slow_client: Client, sandbox: SandboxState, value: str
) -> None:
    sandbox.inject(Fault(route="plazbot.create", status=429, headers={"Retry-After": value}, times=100))
    result = await slow_client.call_tool(*CALLS["plazbot.create"])
    assert result.is_error and "Wait a few seconds and call again." in text_of(result)
    assert len(sandbox.requests_to("plazbot.create")) == 4
