"""A write whose answer was lost is looked for in the CRM before the outcome is called unknown: found
exactly once → created, with its id; surely absent once the settle time has passed → sent once more,
one deal in the end; never a false done (several, or a CRM that cannot be read, leave it unknown, the
candidates listed). A write still under way inside the CRM is waited for, not doubled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from mcp import Client

from opportunity_mcp.app import build_server
from opportunity_mcp.config import ServerConfig
from opportunity_mcp.sandbox import Fault, SandboxState
from opportunity_mcp.sandbox.deals import add_plazbot_deal
from opportunity_mcp.tools.read_back import made_since
from tests.conftest import text_of

pytestmark = pytest.mark.anyio
DEAL = {"name": "Plan anual", "description": "Premium", "amount": 1200, "contactPhone": "+51 912 345 678"}
SETTLE = 0.6  # seconds: short, so that the tests are quick; the sandbox's lags are set around it


@pytest.fixture
async def client(config: ServerConfig) -> AsyncIterator[Client]:
    async with Client(build_server(replace(config, settle=SETTLE)), mode="legacy") as connected:
        yield connected


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


async def test_a_create_dropped_before_the_write_is_sent_once_more_and_makes_one_deal(
    client: Client, sandbox: SandboxState
) -> None:
    sandbox.inject(Fault(route="plazbot.create", drop="before"))
    failed, said, env = await call(client, "create_opportunity", DEAL)
    assert not failed, said
    (deal,) = sandbox.plazbot.values()
    assert env["action"] == "created" and env["id"] == deal["id"]
    assert "sent once more" in env["warnings"][0]
    # The sandbox records a request once it reads its body: the dropped one never got that far.
    assert len(sandbox.requests_to("plazbot.create")) == 1


async def test_a_503_without_the_write_is_sent_once_more(client: Client, sandbox: SandboxState) -> None:
    sandbox.inject(Fault(route="plazbot.create", status=503))
    failed, said, env = await call(client, "create_opportunity", DEAL)
    assert not failed and env["action"] == "created" and len(sandbox.plazbot) == 1, said


async def test_a_create_still_under_way_in_the_crm_is_waited_for_not_doubled(
    client: Client, sandbox: SandboxState
) -> None:
    # The connection drops at once and the deal lands a moment later, before the settle time is over.
    sandbox.inject(Fault(route="plazbot.create", lag=SETTLE / 3))
    failed, said, env = await call(client, "create_opportunity", DEAL)
    assert not failed, said
    (deal,) = sandbox.plazbot.values()
    assert env["id"] == deal["id"] and "confirmed by reading it back" in said
    assert len(sandbox.requests_to("plazbot.create")) == 1


async def test_a_create_sent_again_whose_answer_is_lost_too_is_read_back_not_sent_a_third_time(
    client: Client, sandbox: SandboxState
) -> None:
    sandbox.inject(Fault(route="plazbot.create", drop="before"))
    sandbox.inject(Fault(route="plazbot.create", drop="after"))
    failed, said, _ = await call(client, "create_opportunity", DEAL)
    assert not failed and len(sandbox.plazbot) == 1, said
    assert "confirmed by reading it back" in said and len(sandbox.requests_to("plazbot.create")) == 1


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


async def test_an_update_whose_answer_was_lost_is_confirmed_by_reading_the_deal(
    client: Client, sandbox: SandboxState
) -> None:
    deal = add_plazbot_deal(sandbox, "Plan anual", "contact-456", amount=100)
    # A 500 is no answer to trust (nor to retry blindly), yet the CRM applied the change.
    sandbox.inject(Fault(route="plazbot.update", status=500, apply=True))
    arguments = {"opportunityId": deal["id"], "field": "amount", "value": 250}
    failed, said, env = await call(client, "update_opportunity_field", arguments)
    assert not failed and env["action"] == "updated" and "confirmed by reading it back" in said, said
    assert sandbox.plazbot[deal["id"]]["amount"] == 250 and len(sandbox.requests_to("plazbot.update")) == 1


async def test_an_update_the_deal_does_not_show_is_sent_once_more(client: Client, sandbox: SandboxState) -> None:
    deal = add_plazbot_deal(sandbox, "Plan anual", "contact-456", amount=100)
    sandbox.inject(Fault(route="plazbot.update", status=500))  # not applied
    arguments = {"opportunityId": deal["id"], "field": "amount", "value": 250}
    failed, said, env = await call(client, "update_opportunity_field", arguments)
    assert not failed and env["action"] == "updated" and "sent once more" in said, said
    assert sandbox.plazbot[deal["id"]]["amount"] == 250 and len(sandbox.requests_to("plazbot.update")) == 2


async def test_a_create_that_timed_out_is_never_sent_again_on_the_spot(
    config: ServerConfig, sandbox: SandboxState
) -> None:
    # The CRM may still be working on a request it did not answer in time: absent is not sure yet.
    sandbox.inject(Fault(route="plazbot.create", status=503, delay=1.0))  # not applied, answered too late
    async with Client(build_server(replace(config, settle=SETTLE, http_timeout=0.5)), mode="legacy") as client:
        failed, said, _ = await call(client, "create_opportunity", DEAL)
    assert failed and "may or may not have been created" in said
    assert sandbox.plazbot == {} and len(sandbox.requests_to("plazbot.create")) == 1


async def test_an_update_of_what_a_deal_does_not_show_is_not_confirmed_by_reading(
    client: Client, sandbox: SandboxState
) -> None:
    from opportunity_mcp.sandbox import LC_PIPELINE
    from opportunity_mcp.sandbox.deals import add_lc_deal

    deal = add_lc_deal(
        sandbox, "Plan anual", "LiKJ2vnRg5ETM8Z19K7", pipeline=LC_PIPELINE, stage="7915dedc-8f18-44d5-8bc3-77c04e994a10"
    )
    sandbox.inject(Fault(route="lc.upsert", status=500, times=10))  # not applied, every time
    failed, said, _ = await call(client, "upsert_opportunity", {"id": deal["id"], "assignedTo": "user-lc-2"})
    assert failed and "confirmed" not in said  # the seller is not in what a deal shows: never a false done
