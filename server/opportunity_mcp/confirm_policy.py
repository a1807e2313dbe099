"""When an account wants a person to confirm a write before it is sent: its `confirm` option (the
config file's `confirm = "…"`, or PLAZBOT_CONFIRM / LEADCONNECTOR_CONFIRM for a single account).

    never                      the default: no write waits
    always                     every write waits
    amount>5000, status=won|lost|abandoned, stage=Propuesta|Cierre, assignee
                               a write waits when any rule holds: an amount above N, a status among
                               those, a stage among those names, a change of the assigned seller

A rule that does not parse refuses the start: a typo must not silently let writes through.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

RULES = "never, always, or rules joined by commas: amount>N, status=won|lost|abandoned, stage=Name|Name, assignee"
STATUSES = frozenset({"open", "won", "lost", "abandoned"})


def fold(text: str) -> str:
    """Case, accents and spacing set aside, as names are matched everywhere."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split()).casefold()


@dataclass(frozen=True, slots=True)
class WriteFacts:
    """What a rule looks at, from the resolved write."""

    amount: float | None = None
    status: str | None = None
    stage: str | None = None  # the stage's name, or its id when no name is known
    assignee: bool = False  # the write sets the assigned seller


@dataclass(frozen=True, slots=True)
class ConfirmPolicy:
    always: bool = False
    amount_above: float | None = None
    statuses: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()  # folded names (or ids)
    assignee: bool = False

    @property
    def never(self) -> bool:
        return self == ConfirmPolicy()

    def reason(self, facts: WriteFacts) -> str | None:
        """Why this write waits for a person, in words; None when it need not."""
        if self.always:
            return "this account confirms every write"
        if self.amount_above is not None and facts.amount is not None and facts.amount > self.amount_above:
            return f"amount above {self.amount_above:,.2f}"
        if facts.status is not None and facts.status in self.statuses:
            return f"status {facts.status}"
        if facts.stage is not None and fold(facts.stage) in self.stages:
            return f"stage {facts.stage}"
        if self.assignee and facts.assignee:
            return "a change of the assigned seller"
        return None


def parse_policy(text: str) -> ConfirmPolicy:
    """The policy a `confirm` value states; ValueError saying what is allowed."""
    words = text.strip()
    if words.casefold() in ("", "never"):
        return ConfirmPolicy()
    if words.casefold() == "always":
        return ConfirmPolicy(always=True)
    amount: float | None = None
    statuses: set[str] = set()
    stages: set[str] = set()
    assignee = False
    for rule in (r.strip() for r in words.split(",")):
        key, sep, value = rule.partition(">" if rule.startswith("amount") else "=")
        key, value = key.strip().casefold(), value.strip()
        if key == "amount" and sep:
            amount = _amount(rule, value)
        elif key == "status" and sep:
            statuses |= _statuses(rule, value)
        elif key == "stage" and sep and all(s.strip() for s in value.split("|")):
            stages |= {fold(s) for s in value.split("|")}
        elif key == "assignee" and not sep:
            assignee = True
        else:
            raise ValueError(f"{rule!r} is not a rule; use {RULES}")
    return ConfirmPolicy(False, amount, frozenset(statuses), frozenset(stages), assignee)


def _amount(rule: str, value: str) -> float:
    try:
        amount = float(value)
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"{rule!r}: amount>N takes a plain number such as 5000")
    return amount


def _statuses(rule: str, value: str) -> set[str]:
    given = {s.strip().casefold() for s in value.split("|")}
    if not given <= STATUSES:
        raise ValueError(f"{rule!r}: status=… takes open, won, lost, abandoned joined by |")
    return given
