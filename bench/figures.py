"""Figures in the docs come from the last run of the harness that measures them: each run writes its
table between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->` in docs/figures.md, so a figure
shown is always the figure measured (a test checks docs/figures.md against bench/results)."""

from __future__ import annotations

import re
from pathlib import Path

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures.md"


def block(name: str, text: str) -> str:
    """The README's block of figures called `name` ("" when it has none)."""
    found = re.search(rf"<!-- figures:{name} -->\n(.*?)<!-- /figures:{name} -->", text, flags=re.S)
    return found.group(1) if found else ""


def as_block(table: str) -> str:
    """A results file as the README shows it: its headings as bold lines, under the README's own."""
    return re.sub(r"^#+ (.*)$", r"**\1**", table, flags=re.M)


def publish(name: str, table: str, readme: Path = FIGURES) -> None:
    """Put `table` in the README's block `name`."""
    table = as_block(table)
    text = readme.read_text()
    start, end = f"<!-- figures:{name} -->\n", f"<!-- /figures:{name} -->"
    if start not in text or end not in text:
        raise SystemExit(f"{readme} has no block {start.strip()} … {end}")
    head, rest = text.split(start, 1)
    readme.write_text(head + start + table + end + rest.split(end, 1)[1])
