"""Names to ids, inside the tools: a phone or an email finds a contact, an email a seller, a name a
stage, a pipeline or a lost reason. An id given as an id is used as it is, with no request.

Names match exactly once case, accents and spacing are set aside (`norm`), nothing looser. No match,
or several, is a refusal that lists the candidates (up to five, name and id) and says that nothing
was written. Reference lists are reused while fresh; a name missing from a kept list fetches it again
once, so a stage made a minute ago is found. Lookups run under the call's own policy: retried like
any safe request, counted by the rate limit, inside the call's time budget.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from opportunity_mcp.crm.base import CrmClient
from opportunity_mcp.crm.errors import CrmAuthError, CrmError
from opportunity_mcp.crm.families import FAMILIES
from opportunity_mcp.crm.lookups import Named
from opportunity_mcp.crm.policy import CallPolicy
from opportunity_mcp.tools.access import State
from opportunity_mcp.untrusted import quoted

T = TypeVar("T")
MAX_CANDIDATES = 5


def norm(text: str) -> str:
    """Case, accents and spacing set aside: 'Negociación ' and 'NEGOCIACION' read the same."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split()).casefold()


def _listed(found: list[Named]) -> str:
    """Candidates for an error: names quoted (they are data), ids beside them, at most five; the
    list ends the sentence, so the cap on an error's length cuts it rather than the instructions."""
    shown = ", ".join(f"{quoted(n.name, 40)} ({n.id})" for n in found[:MAX_CANDIDATES])
    return shown + (f" and {len(found) - MAX_CANDIDATES} more" if len(found) > MAX_CANDIDATES else "")


@dataclass
class Lookups:
    """One call's lookups: its policy (shared with the write), and what was resolved, in words."""

    state: State
    client: CrmClient
    policy: CallPolicy
    scopes: Mapping[str, str] = field(default_factory=dict)  # what a family's credentials need per kind
    resolved: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        account = self.client.account
        return f"{FAMILIES[account.family].target_kind} {account.target}"

    async def ask(self, kind: str, id_arg: str, request: Callable[[], Awaitable[T]]) -> T:
        """A lookup's request, its failures said as refusals that name `id_arg` as the way around."""
        try:
            return await request()
        except CrmAuthError as err:
            need = f" (it needs {self.scopes[kind]})" if kind in self.scopes else ""
            raise ToolError(
                f"Lookup refused: {err.message}. These credentials may not read {kind}s{need}; nothing was "
                f"written. Pass {id_arg} instead, or ask whoever runs this server for that permission."
            ) from None
        except CrmError as err:
            raise ToolError(
                f"Lookup failed: {err.message}. Nothing was written; try again shortly, or pass {id_arg}."
            ) from None

    async def by_name(
        self,
        kind: str,
        arg: str,
        id_arg: str,
        wanted: str,
        fetch: Callable[[CallPolicy], Awaitable[list[Named]]],
        *,
        keep: Callable[[Named], bool] = lambda n: True,
        on: Callable[[Named], str | None] = lambda n: n.name,
        cache_as: str | None = None,
    ) -> Named:
        """The one item of a reference list (those `keep` keeps: a pipeline's stages) whose name, or
        what `on` reads (a seller's email), is `wanted`."""
        account = self.client.account.name

        async def listed(refresh: bool) -> tuple[list[Named], bool]:
            async def get() -> list[Named]:
                return await fetch(self.policy)

            found: tuple[list[Named], bool] = await self.state.references.get(
                account, cache_as or kind, get, refresh=refresh
            )
            return found

        key = norm(wanted)

        def hits_in(found: list[Named]) -> list[Named]:
            return [n for n in found if keep(n) and norm(on(n) or "") == key]

        items, fresh = await self.ask(kind, id_arg, lambda: listed(False))
        hits = hits_in(items)
        if not hits and not fresh:
            items, _ = await self.ask(kind, id_arg, lambda: listed(True))
            hits = hits_in(items)
        if len(hits) == 1:
            self.resolved[kind] = hits[0].name
            return hits[0]
        shown = quoted(wanted)
        if hits:
            raise ToolError(
                f"Ambiguous: {arg} {shown} matches {len(hits)} {kind}s. Nothing was written; pass {id_arg} with "
                f"the one you mean: {_listed(hits)}."
            )
        scope = [n for n in items if keep(n)]
        known = f" Known: {_listed(scope)}." if scope else ""
        raise ToolError(
            f"Not found: {arg} {shown} matches no {kind} in {self.where}. Nothing was written; call again with "
            f"one of the known names, or pass {id_arg}.{known}"
        )

    async def contact(self, arg: str, shown: str, search: Callable[[CallPolicy], Awaitable[list[Named]]]) -> Named:
        """The one contact a phone or an email finds (looked up every time)."""
        found = await self.ask("contact", "contactId", lambda: search(self.policy))
        if len(found) == 1:
            self.resolved["contact"] = f"{found[0].name} ({shown})"
            return found[0]
        if found:
            raise ToolError(
                f"Ambiguous: {len(found)} contacts have {arg} {shown}. Nothing was written; pass contactId with "
                f"the one you mean: {_listed(found)}."
            )
        raise ToolError(
            f"Not found: no contact in {self.where} has {arg} {shown}. Nothing was written; check it, pass "
            "contactId, or leave the contact out."
        )

    def note(self, kind: str, words: str) -> None:
        self.resolved[kind] = words


def exclusive(arguments: Mapping[str, Any], *names: str) -> None:
    """Refuse a call that gives more than one way to say the same thing."""
    given = [n for n in names if arguments.get(n) is not None]
    if len(given) > 1:
        raise ToolError(f"Invalid arguments: {' and '.join(given)}: give one of {', '.join(names)}, not several")
