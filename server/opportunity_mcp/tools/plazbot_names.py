"""Plazbot / Wabotify names to ids, shared by create and update: a contact by phone or email, a
seller by email, a stage by name."""

from __future__ import annotations

from opportunity_mcp.crm import plazbot_lookups as find
from opportunity_mcp.crm.plazbot import PlazbotClient
from opportunity_mcp.tools.resolve import Lookups


async def plazbot_contact(look: Lookups, client: PlazbotClient, phone: str | None, email: str | None) -> str | None:
    """The contact a phone or an email names (shared with the update tool)."""
    if phone is not None:
        return (await look.contact("contactPhone", phone, lambda p: find.contacts_by_phone(client, phone, p))).id
    if email is not None:
        return (await look.contact("contactEmail", email, lambda p: find.contacts_by_email(client, email, p))).id
    return None


async def plazbot_seller(look: Lookups, client: PlazbotClient, email: str, id_arg: str) -> str:
    seller = await look.by_name(
        "seller", "assigneeEmail", id_arg, email, lambda p: find.sellers(client, p), on=lambda n: n.email
    )
    look.note("seller", seller.email or email)
    return seller.id


async def plazbot_stage(look: Lookups, client: PlazbotClient, name: str, arg: str) -> str:
    return (await look.by_name("stage", arg, "stageId", name, lambda p: find.stages(client, p))).id
