"""A create whose answer was lost is looked for in the CRM before the outcome is called unknown:
found exactly once → created, with its id; never a false done (none, several, or a CRM that cannot be
read leave it unknown, the candidates listed). Nothing is sent twice."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.sandbox import Fault, SandboxState
from opportunity_mcp.sandbox.deals import add_plazbot_deal
from opportunity_mcp.tools.read_back import made_since
from tests.conftest import text_of

pytestmark = pytest.mark.anyio
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200, "contactPhone": "+51 912 345 678"}


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
    result = await client.call_tool(tool, arguments)
    return bool(result.is_error), text_of(result), result.structured_content or {}


async def test_a_create_dropped_after_the_write_is_confirmed_by_reading_it_back(
    client: Client, sandbox: SandboxState
) -> None:
    sandbox.inject(Fault(route="plazbot.create", drop="after"))
    failed, said, env = await call(client, "create_opportunity", DEAL)
    assert not failed, said
    (deal,) = sandbox.plazbot.values()
    assert env["action"] == "created" and env["id"] == deal["id"]
    assert "confirmed by reading it back" in env["warnings"][0] and "confirmed by reading it back" in said
    assert len(sandbox.requests_to("plazbot.create")) == 1  # sent once
    journal = (await client.read_resource("journal://recent")).contents[0].text  # type: ignore[union-attr]
    assert " done " in journal.splitlines()[0]


async def test_a_create_dropped_before_the_write_stays_unknown_and_is_not_sent_again(
    client: Client, sandbox: SandboxState
) -> None:
    sandbox.inject(Fault(route="plazbot.create", drop="before"))
    failed, said, _ = await call(client, "create_opportunity", DEAL)
    assert failed and "may or may not have been created" in said
    assert sandbox.plazbot == {}  # and nothing was sent again: the deal would be there


async def test_two_candidates_keep_it_unknown_and_are_listed(client: Client, sandbox: SandboxState) -> None:
    twin = add_plazbot_deal(sandbox, "Plan anual", "contact-456", amount=1200)  # made by someone, just now
    sandbox.inject(Fault(route="plazbot.create", drop="after"))
    failed, said, _ = await call(client, "create_opportunity", DEAL)
    assert failed and "2 deals could be it" in said and twin["id"] in said
    assert "may or may not have been created" in said


async def test_a_list_that_cannot_be_read_keeps_it_unknown(client: Client, sandbox: SandboxState) -> None:
    sandbox.inject(Fault(route="plazbot.create", drop="after"))
    sandbox.inject(Fault(route="plazbot.list", status=503, times=10))
    failed, said, _ = await call(client, "create_opportunity", DEAL)
    assert failed and "may or may not have been created" in said
    assert len(sandbox.plazbot) == 1  # it was made: a person checks, as the answer says


async def test_a_leadconnector_upsert_for_a_contact_is_read_back_by_its_search(
    client: Client, sandbox: SandboxState
) -> None:
    sandbox.inject(Fault(route="lc.upsert", drop="after"))
    arguments = {"name": "Plan anual", "contactPhone": "+51 912 345 678", "monetaryValue": 900}
    failed, said, env = await call(client, "upsert_opportunity", arguments)
    assert not failed, said
    (deal,) = sandbox.leadconnector.values()
    assert env["action"] == "created" and env["id"] == deal["id"] and "confirmed by reading it back" in said


def test_the_crms_times_are_read_whatever_their_precision() -> None:
    assert made_since("2026-12-06T10:00:00.1234567Z", since=1796551200.0)  # Plazbot's seven digits
    assert not made_since("2020-01-01T00:00:00Z", since=1796551200.0)
    assert not made_since(None, since=0) and not made_since("yesterday", since=0)
