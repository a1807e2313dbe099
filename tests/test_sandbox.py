"""The sandbox CRM's own surface: what other processes (benchmarks, a bot flow under test) rely on."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx2
import pytest

from opportunity_mcp.sandbox import PLAZBOT_WORKSPACE, Options, SandboxServer, SandboxState
from tests.conftest import CANARY_KEY, CANARY_TOKEN

PLAZBOT = {"Authorization": f"Bearer {CANARY_KEY}", "x-workspace-id": PLAZBOT_WORKSPACE}
LC = {"Authorization": f"Bearer {CANARY_TOKEN}", "Version": "2021-07-28"}


@pytest.fixture
def http(sandbox_server: SandboxServer, sandbox: SandboxState) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=sandbox_server.url, timeout=5) as client:
        yield client


def _create(http: httpx2.Client) -> str:
    answer = http.post(
        "/api/opportunity",
        headers=PLAZBOT,
        json={"workspaceId": PLAZBOT_WORKSPACE, "name": "n", "description": "d", "amount": 1},
    )
    assert answer.status_code == 200 and answer.json()["success"] is True
    opp_id: str = answer.json()["data"]["id"]
    return opp_id


def test_get_by_id_in_both_documented_shapes(http: httpx2.Client, sandbox: SandboxState) -> None:
    opp_id = _create(http)
    enveloped = http.get(f"/api/opportunity/{opp_id}", params={"workspaceId": PLAZBOT_WORKSPACE}, headers=PLAZBOT)
    assert enveloped.json()["data"]["id"] == opp_id
    sandbox.options.plazbot_get_shape = "bare"
    bare = http.get(f"/api/opportunity/{opp_id}", params={"workspaceId": PLAZBOT_WORKSPACE}, headers=PLAZBOT)
    assert isinstance(bare.json(), list) and bare.json()[0]["id"] == opp_id


def test_update_styles_spell_the_answer_differently(http: httpx2.Client, sandbox: SandboxState) -> None:
    opp_id = _create(http)
    query = {"id": opp_id, "workspaceId": PLAZBOT_WORKSPACE}
    old = http.put("/api/opportunity", params=query, headers=PLAZBOT, json={"paramToUpdate": "name", "name": "a"})
    assert "oportunity" in old.json()["data"]
    sandbox.options.plazbot_update_style = "fields"
    new = http.put("/api/opportunity", params=query, headers=PLAZBOT, json={"name": "b", "amount": 3})
    assert new.json()["data"]["opportunity"]["name"] == "b" and sandbox.plazbot[opp_id]["amount"] == 3


def test_auth_and_workspace_header_are_checked(http: httpx2.Client) -> None:
    body = {"workspaceId": PLAZBOT_WORKSPACE, "name": "n", "description": "d", "amount": 1}
    wrong_key = http.post("/api/opportunity", headers={**PLAZBOT, "Authorization": "Bearer nope"}, json=body)
    assert wrong_key.status_code == 401 and wrong_key.json()["success"] is False
    mismatch = http.post("/api/opportunity", headers={**PLAZBOT, "x-workspace-id": "ws-sandbox-2"}, json=body)
    assert mismatch.status_code == 400
    lc = http.post("/opportunities/upsert", headers={"Authorization": "Bearer nope", "Version": "2021-07-28"}, json={})
    assert lc.json() == {
        "statusCode": 401,
        "message": "Invalid token: access token is invalid",
        "error": "Unauthorized",
    }


def test_leadconnector_search_and_get_show_what_was_written(http: httpx2.Client) -> None:
    body = {"pipelineId": "pipe-sandbox", "locationId": "loc-sandbox", "contactId": "contact-lc-2", "name": "x"}
    first = http.post("/opportunities/upsert", headers=LC, json=body).json()
    assert first["new"] is True
    got = http.get(f"/opportunities/{first['opportunity']['id']}", headers=LC).json()
    assert got["opportunity"]["name"] == "x"
    found = http.get(
        "/opportunities/search", params={"location_id": "loc-sandbox", "contact_id": "contact-lc-2"}, headers=LC
    ).json()
    assert found["meta"]["total"] == 1


def test_control_api_injects_faults_and_reports_state(http: httpx2.Client, sandbox: SandboxState) -> None:
    assert http.post("/_sandbox/faults", json={"route": "plazbot.create", "status": 503}).json() == {"ok": True}
    assert http.post("/_sandbox/faults", json={"route": "nowhere"}).status_code == 400
    refused = http.post("/api/opportunity", headers=PLAZBOT, json={})
    assert refused.status_code == 503
    _create(http)
    state = http.get("/_sandbox/state").json()
    assert len(state["plazbot"]) == 1 and state["faults"] == 0
    assert [r["route"] for r in http.get("/_sandbox/requests").json()] == ["plazbot.create", "plazbot.create"]
    assert http.post("/_sandbox/options", json={"upsert_shapes": "contact"}).json() == {"ok": True}
    assert sandbox.options.upsert_shapes == "contact"
    assert http.post("/_sandbox/reset").json() == {"ok": True}
    assert sandbox.plazbot == {} and sandbox.options == Options()


@pytest.mark.slow
def test_sandbox_runs_on_its_own() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with subprocess.Popen(
        [sys.executable, "-m", "opportunity_mcp", "sandbox", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    state = httpx2.get(f"http://127.0.0.1:{port}/_sandbox/state", timeout=1)
                    break
                except httpx2.TransportError:
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.1)
            assert state.json()["plazbot"] == []
        finally:
            proc.terminate()
            proc.wait(timeout=10)
