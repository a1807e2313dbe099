"""The prompts: each file loads, is listed, and renders with its arguments through the protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from opportunity_mcp.prompts import PromptFileError, load, parse, prompts_dir

pytestmark = pytest.mark.anyio
NAMES = ["capture_deal", "move_deal", "whatsapp_bot"]


def test_every_prompt_file_loads_with_described_arguments() -> None:
    prompts = load()
    assert [p.name for p in prompts] == NAMES
    for prompt in prompts:
        assert prompt.title and prompt.description
        for argument in prompt.arguments:
            assert argument.description
    languages = {a.name: a.description or "" for p in prompts for a in p.arguments}
    assert "es or en" in languages["language"]
    assert "Spanish or English" in languages["transcript"]


async def test_prompts_are_listed_and_render(client: Client) -> None:
    listed = await client.list_prompts()
    assert [p.name for p in listed.prompts] == NAMES
    capture = next(p for p in listed.prompts if p.name == "capture_deal")
    assert capture.arguments is not None
    assert [(a.name, a.required) for a in capture.arguments] == [
        ("transcript", True),
        ("language", False),
        ("crm", False),
    ]
    got = await client.get_prompt("capture_deal", {"transcript": "Cliente: quiero el plan anual por 1.200 €"})
    text = got.messages[0].content.text  # type: ignore[union-attr]
    assert "quiero el plan anual por 1.200 €" in text and "${" not in text
    assert "never invent or guess one" in text and "contactPhone" in text
    bot = await client.get_prompt("whatsapp_bot", {"business": "Empresa X", "language": "es"})
    assert "sales assistant of Empresa X" in bot.messages[0].content.text  # type: ignore[union-attr]
    assert "idempotencyKey" in bot.messages[0].content.text  # type: ignore[union-attr]


async def test_a_missing_required_argument_is_refused(client: Client) -> None:
    from mcp.shared.exceptions import MCPError

    with pytest.raises(MCPError, match="transcript"):
        await client.get_prompt("capture_deal", {})


def test_malformed_files_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("name: x\ntitle: t\ndescription: d\nargument: a | maybe | text\n---\n${arguments.a}\n")
    with pytest.raises(PromptFileError, match=r"bad\.txt:4"):
        parse(bad)
    bad.write_text("name: x\ntitle: t\ndescription: d\n---\n${arguments.a}\n")
    with pytest.raises(PromptFileError, match="do not match arguments"):
        parse(bad)


def test_a_checkout_reads_the_top_level_folder_and_the_override_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert prompts_dir() == Path(__file__).resolve().parent.parent / "prompts"
    (tmp_path / "only.txt").write_text("name: only\ntitle: t\ndescription: d\n---\nHello\n")
    monkeypatch.setenv("OPPORTUNITY_MCP_PROMPTS", str(tmp_path))
    assert prompts_dir() == tmp_path
    assert [p.name for p in load()] == ["only"]
