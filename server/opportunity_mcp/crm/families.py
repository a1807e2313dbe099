"""The CRM families this server can write to, behind one description each.

A family is a module of this package with a `FAMILY`; registering it here is all the rest of the
server needs to configure its accounts (environment variables and config-file keys follow from the
description) and to connect clients to them. Its tools are declared in the tool layer."""

from __future__ import annotations

from collections.abc import Mapping

from opportunity_mcp.crm import leadconnector, plazbot
from opportunity_mcp.crm.base import Family

# One line per family, in the order tools and help texts list them.
FAMILIES: Mapping[str, Family] = {family.name: family for family in (plazbot.FAMILY, leadconnector.FAMILY)}
