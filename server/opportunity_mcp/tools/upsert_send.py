"""How an upsert is sent: the upsert itself, the documented create where the upsert cannot link a
new deal to its contact, and the one create or update that carries custom fields (the upsert takes
none); and the payload in the CRM's names, for previews and confirmations."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from opportunity_mcp.crm.errors import CrmInvalid
from opportunity_mcp.crm.leadconnector import LeadConnectorClient, Upsert
from opportunity_mcp.crm.leadconnector_deals import create_deal, update_deal
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.crm.result import WriteResult
from opportunity_mcp.models import Reading, UpsertOpportunityArgs
from opportunity_mcp.tools.custom_fields import Item, custom_items
from opportunity_mcp.tools.resolve import Lookups


async def send_upsert(
    client: LeadConnectorClient,
    upsert: Upsert,
    pipeline: str | None,
    policy: CallPolicy,
    *,
    look: Lookups,
    create: bool,
    contact: str | None,
) -> WriteResult:
    """The upsert; a new deal for a contact where the upsert cannot link it (a location whose form has
    no contactId, or allowDuplicate, which must never update an existing deal) is created through
    POST /opportunities/, the documented create that requires its contact."""
    linked = upsert.id is None and upsert.contact_id is not None
    if linked and pipeline is not None and (create or await client.learned_shape() == "followers"):
        return await _create(client, upsert, pipeline, policy, look)
    try:
        return await client.upsert(upsert, pipeline=pipeline, policy=policy)
    except CrmInvalid:
        # Nothing was written on that 422. If it taught this location's form: a new deal for a contact
        # is created the linked way; the contact's deal found by id is upserted by its contact instead.
        shape = await client.learned_shape()
        if linked and pipeline is not None and shape == "followers":
            return await _create(client, upsert, pipeline, policy, look)
        if upsert.id is not None and contact is not None and upsert.contact_id is None and shape == "contact":
            by_contact = dataclasses.replace(upsert, id=None, contact_id=contact)
            return await client.upsert(by_contact, pipeline=pipeline, policy=policy)
        raise


async def _create(
    client: LeadConnectorClient, upsert: Upsert, pipeline: str, policy: CallPolicy, look: Lookups
) -> WriteResult:
    if upsert.followers or upsert.lost_reason_id or upsert.remove_all_followers:
        raise CrmInvalid(
            "a new deal for a contact is created with POST /opportunities/, which takes no followers or "
            "lostReasonId: create it without them, then add them with an upsert by its id",
            status=422,
        )
    look.note("via", "POST /opportunities/")
    return await create_deal(client, upsert, pipeline, policy)


async def with_custom_fields(
    look: Lookups,
    client: LeadConnectorClient,
    args: UpsertOpportunityArgs,
    upsert: Upsert,
    pipeline: str | None,
    reading: Reading,
) -> tuple[Callable[[CallPolicy], Awaitable[WriteResult]], tuple[Item, ...]]:
    """The one write that carries custom fields (the upsert takes none): PUT /opportunities/{id} for a
    deal named or found, POST /opportunities/ for a new one, which needs its contact."""
    assert args.customFields is not None
    if args.followers is not None or args.isRemoveAllFollowers or args.lostReasonId is not None:
        raise ToolError(
            "Invalid arguments: customFields: they are written by LeadConnector's create or update, which take "
            "no followers, isRemoveAllFollowers or lost reason; make two calls, the custom fields and then those"
        )
    if upsert.id is None and (upsert.contact_id is None or pipeline is None):
        raise ToolError(
            "Invalid arguments: customFields: a new deal with custom fields is made by LeadConnector's create, "
            "which needs its contact: add contactPhone, contactEmail or contactId, or create the deal first"
        )
    custom, names = await custom_items(look, client, args.customFields, reading)
    look.note("custom fields", names)
    if upsert.id is not None:
        return (lambda policy: update_deal(client, upsert, args.pipelineId, policy, custom)), custom
    assert pipeline is not None
    return (lambda policy: create_deal(client, upsert, pipeline, policy, custom)), custom


def payload_of(upsert: Upsert, pipeline: str | None, custom: tuple[Item, ...]) -> dict[str, Any]:
    """What is sent, under the CRM's names (the upsert's body is shaped later, per location)."""
    sent = {
        "id": upsert.id,
        "name": upsert.name,
        "status": upsert.status,
        "pipelineStageId": upsert.stage_id,
        "monetaryValue": upsert.value,
        "assignedTo": upsert.assigned_to,
        "lostReasonId": upsert.lost_reason_id,
        "contactId": upsert.contact_id,
        "followers": list(upsert.followers) if upsert.followers is not None else None,
        "pipelineId": pipeline,
        "customFields": list(custom) or None,
        "followersActionType": upsert.followers_action if upsert.followers is not None else None,
        "isRemoveAllFollowers": upsert.remove_all_followers or None,
    }
    return {k: v for k, v in sent.items() if v is not None}
