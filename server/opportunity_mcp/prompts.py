"""MCP prompts, one text file each in prompts/: a header naming the prompt, its description and its
arguments, then `---` and the text, with `${arguments.NAME}` where an argument goes (the form MCP
Bundle manifests use, so the manifest can carry the same text).

    name: capture_deal
    title: Capture a deal from this conversation
    description: ...
    argument: transcript | required | The conversation to read
    ---
    Read this: ${arguments.transcript}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument

_PLACEHOLDER = re.compile(r"\$\{arguments\.([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class PromptFile:
    name: str
    title: str
    description: str
    arguments: tuple[PromptArgument, ...]
    text: str

    def render(self, values: dict[str, str]) -> str:
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1)) or "").strip(), self.text)


class PromptFileError(ValueError):
    """A prompt file that does not follow the format; the message names the file and the line."""


def prompts_dir() -> Path:
    """Where the prompt files are: $OPPORTUNITY_MCP_PROMPTS, the top-level prompts/ folder of a
    checkout or an MCP Bundle (server/opportunity_mcp/../../prompts), or the copy an installed wheel
    carries inside the package (opportunity_mcp/prompt_files)."""
    override = os.environ.get("OPPORTUNITY_MCP_PROMPTS")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    source = here.parent.parent / "prompts"
    if source.is_dir() and (here.parent.name == "server"):
        return source
    return here / "prompt_files"


def parse(path: Path) -> PromptFile:
    header, sep, text = path.read_text(encoding="utf-8").partition("\n---\n")
    if not sep:
        raise PromptFileError(f"{path.name}: no '---' line between the header and the text")
    fields: dict[str, str] = {}
    arguments: list[PromptArgument] = []
    for number, line in enumerate(header.splitlines(), 1):
        key, colon, value = line.partition(":")
        if not colon:
            raise PromptFileError(f"{path.name}:{number}: expected 'key: value'")
        key, value = key.strip(), value.strip()
        if key == "argument":
            parts = [p.strip() for p in value.split("|", 2)]
            if len(parts) != 3 or parts[1] not in ("required", "optional"):
                raise PromptFileError(f"{path.name}:{number}: expected 'argument: name | required|optional | text'")
            arguments.append(PromptArgument(name=parts[0], required=parts[1] == "required", description=parts[2]))
        elif key in ("name", "title", "description"):
            fields[key] = value
        else:
            raise PromptFileError(f"{path.name}:{number}: unknown key {key!r}")
    missing = {"name", "title", "description"} - fields.keys()
    if missing:
        raise PromptFileError(f"{path.name}: missing {', '.join(sorted(missing))}")
    declared = {a.name for a in arguments}
    used = set(_PLACEHOLDER.findall(text))
    if used != declared:
        raise PromptFileError(f"{path.name}: placeholders {sorted(used)} do not match arguments {sorted(declared)}")
    return PromptFile(fields["name"], fields["title"], fields["description"], tuple(arguments), text.strip() + "\n")


def load(directory: Path | None = None) -> list[PromptFile]:
    folder = directory or prompts_dir()
    return [parse(path) for path in sorted(folder.glob("*.txt"))]


def as_mcp(prompt: PromptFile) -> Prompt:
    async def render(**values: str) -> str:
        return prompt.render(values)

    return Prompt(
        name=prompt.name,
        title=prompt.title,
        description=prompt.description,
        arguments=list(prompt.arguments),
        fn=render,
    )
