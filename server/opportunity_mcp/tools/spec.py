"""How a tool is declared: once, with its argument model, annotations, description and handler.
The tool list, the tools/list snapshot, the bundle manifest check and the README table all follow
from these declarations."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict

from opportunity_mcp.schema import envelope_schema, flat_schema
from opportunity_mcp.scrub import scrub
from opportunity_mcp.summaries import MAX_TEXT, bounded
from opportunity_mcp.validation import MAX_REFUSAL

ANY = "any"  # the family of a tool that serves every configured CRM
Handler = Callable[[dict[str, Any], Context[Any, Any]], Awaitable[CallToolResult | InputRequiredResult]]


@dataclass(frozen=True, slots=True, eq=False)  # one per tool: hashed by identity
class ToolSpec:
    """A tool: its handler (whose name and docstring are the tool's name and description), the
    family whose accounts it writes to, its argument model, and whether repeating it is harmless."""

    handler: Handler
    title: str
    family: str
    args: type[BaseModel]
    idempotent: bool
    read_only: bool = False  # a read: nothing is written, repeating it is harmless
    output: dict[str, Any] | None = None  # its structured content's schema; None: the write envelope

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.handler.__doc__ or "")


class _RawArguments(ArgModelBase):
    """Hands the raw arguments to the tool, which validates them with its own model so that a
    refusal reads as one line per argument instead of pydantic's report."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


_OUTPUT = envelope_schema()


def _both_channels(spec: ToolSpec) -> Handler:
    """The handler, with every refusal and failure answered on both channels: clients show their model
    either the text or the structured content, and some ignore isError. The text starts as the SDK
    starts a tool error, so it reads as a failure from its first words; the structured content says
    `ok: false` with the same words."""

    @functools.wraps(spec.handler)
    async def run(arguments: dict[str, Any], ctx: Context[Any, Any]) -> CallToolResult | InputRequiredResult:
        try:
            return await spec.handler(arguments, ctx)
        except ToolError as err:
            # Scrubbed, then bounded like every answer (a cut must not leave half a secret); an argument
            # refusal may list the allowed names once.
            said = str(err)
            said = bounded(scrub(said), MAX_REFUSAL if said.startswith("Invalid arguments") else MAX_TEXT)
            text = f"Error executing tool {spec.name}: {said}"
            return CallToolResult(
                content=[TextContent(type="text", text=text)],
                structured_content={"ok": False, "error": said},
                is_error=True,
            )

    return run


@functools.cache
def mcp_tool(spec: ToolSpec) -> Tool:
    """The SDK's tool for a declaration (built once per process: it holds no per-server state)."""
    return Tool(
        fn=_both_channels(spec),
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=flat_schema(spec.args),
        # The envelope is built by our own model: publish its schema, skip re-validating it per call.
        fn_metadata=FuncMetadata(arg_model=_RawArguments, output_schema=spec.output or _OUTPUT),
        is_async=True,
        context_kwarg="ctx",
        annotations=ToolAnnotations(
            read_only_hint=spec.read_only,
            destructive_hint=False,
            idempotent_hint=spec.idempotent,
            open_world_hint=True,
        ),
    )
