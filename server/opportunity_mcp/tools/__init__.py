"""The tools, each declared once in its own module (`SPEC`), and the write path they share.

access.py  the state a call works with, the caller's allowance, argument parsing
write.py   journal claim → CRM call → envelope → sentence, and answers to repeats
spec.py    what a declaration holds, and the SDK tool made from it
"""

from __future__ import annotations

from collections.abc import Collection

from mcp.server.mcpserver.tools import Tool

from opportunity_mcp.tools import create, find, update, upsert
from opportunity_mcp.tools.spec import ANY, ToolSpec, mcp_tool

# Every tool, in the order tools/list shows them.
TOOLS: tuple[ToolSpec, ...] = (create.SPEC, update.SPEC, upsert.SPEC, find.SPEC)


def specs_for(families: Collection[str]) -> tuple[ToolSpec, ...]:
    """The tools of the configured CRM families: a tool is listed only where it can write."""
    return tuple(spec for spec in TOOLS if spec.family in families or (spec.family == ANY and families))


def build_tools(families: Collection[str]) -> list[Tool]:
    return [mcp_tool(spec) for spec in specs_for(families)]
