"""The sentences an agent reads: one or two plain sentences, no JSON or markdown, ≤ 400 characters
with every warning in them, and the ids needed for the next call. Also the wording of failures, with
the next step to take."""

from __future__ import annotations

from typing import Literal

from opportunity_mcp.crm.errors import (
    CrmAuthError,
    CrmConnectError,
    CrmError,
    CrmInvalid,
    CrmNotApplied,
    CrmNotFound,
    CrmRateLimited,
)
from opportunity_mcp.envelope import Envelope
from opportunity_mcp.untrusted import clean, quoted

MAX_TEXT = 400
WriteKind = Literal["create", "update", "upsert-new", "upsert-id"]


def bounded(text: str, limit: int = MAX_TEXT) -> str:
    """Any answer's text, success or error, at most `limit` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def money(amount: float) -> str:
    return f"{amount:,.2f}"


def success_text(env: Envelope, *, field: str | None = None) -> str:
    """E.g. "Created opportunity OPP-2026-0001 'Plan anual' (id 789) for 1,200.50, contact 456."."""
    ref = f"opportunity {clean(env.code)} " if env.code else "opportunity "
    label = f"{quoted(env.name)} " if env.name else ""
    words = env.resolved or {}
    owner = f"of {quoted(words['deal of'])} " if "deal of" in words else ""
    head = f"{ref}{label}{owner}(id {clean(env.id)})"
    if field is not None:
        shown = _field_value(env, field, words)
        text = f"Updated {field} of {head}" + (f" to {shown}." if shown else ".")
    else:
        parts = _parts(env, words)
        verb = {"created": "Created", "updated": "Updated", "already_done": "Already done, nothing sent:"}[env.action]
        text = f"{verb} {head}" + (" " + ", ".join(parts) if parts else "") + "."
        # Every warning is said (some clients show the model only this text); the deal's details
        # give way to them, from the last, when the whole would be too long.
        while parts and len(text) + len(_notes(env)) > MAX_TEXT:
            parts.pop()
            text = f"{verb} {head}" + (" " + ", ".join(parts) if parts else "") + "."
    text += _notes(env)
    return bounded(text)


def _notes(env: Envelope) -> str:
    return "".join(f" Note: {clean(warning, 200)}" for warning in env.warnings)


def _parts(env: Envelope, words: dict[str, str]) -> list[str]:
    """What a created or updated deal now holds, names before ids."""

    # Names in words, quoted (a customer may have named themselves anything); ids as they are, a UUID
    # left out for the tokens it costs.
    def said(kind: str, fallback: str | None, short: bool = False) -> str | None:
        if kind in words:
            return quoted(words[kind])
        if fallback and not (short and len(fallback) > 20):
            return clean(fallback)
        return None

    found = [
        f"for {money(env.amount)}" if env.amount is not None else None,
        f"status {clean(env.status)}" if env.status else None,
        f"custom fields {words['custom fields']}" if "custom fields" in words else None,  # quoted already
        f"pipeline {p}" if (p := said("pipeline", None)) else None,
        f"stage {s}" if (s := said("stage", env.stage, short=True)) else None,
        f"lost reason {r}" if (r := said("lost reason", None)) else None,
        f"contact {c}" if (c := said("contact", env.contact)) else None,
        f"name {quoted(words['name was'])} → {quoted(env.name or '')}" if "name was" in words else None,
        f"created with {words['via']}" if "via" in words else None,
        f"assigned to {a}" if (a := said("seller", env.assignee)) else None,
    ]
    return [part for part in found if part]


def _field_value(env: Envelope, field: str, words: dict[str, str]) -> str | None:
    if field == "amount" and env.amount is not None:
        return money(env.amount)
    said = {"stageId": words.get("stage"), "assignedAgentId": words.get("seller"), "contactId": words.get("contact")}
    if said.get(field):
        return quoted(str(said[field]))
    value = {"name": env.name, "stageId": env.stage, "assignedAgentId": env.assignee, "contactId": env.contact}.get(
        field
    )
    return quoted(value) if value else None


def failure_text(err: CrmError, *, kind: WriteKind, secret_source: str) -> str:
    """What went wrong and what the agent should do next; `secret_source` names where the account's
    secret comes from (a variable), for whoever runs the server."""
    said = err.message.rstrip(".")
    if isinstance(err, CrmAuthError):
        return (
            f"{said}. The server's credentials are wrong, expired or lack permission; retrying will not "
            f"help. Ask whoever runs this server to check {secret_source or 'its CRM secret'}."
        )
    if isinstance(err, CrmNotFound):
        return f"{said}. Nothing was written. Check the ids you passed; look them up instead of guessing."
    if isinstance(err, CrmNotApplied):
        return f"{said}. Treat the change as not made; tell the user it did not take."
    if isinstance(err, CrmInvalid):
        return f"{said}. Nothing was written. Fix those values and call again."
    if isinstance(err, CrmRateLimited):
        wait = f"{err.retry_after:.0f} s" if err.retry_after is not None else "a few seconds"
        return f"{said}. Nothing was written. Wait {wait} and call again."
    if isinstance(err, CrmConnectError):
        return f"{said}. Nothing was sent. Try again shortly; if it persists, the CRM or its URL is unreachable."
    if not err.outcome_known:
        if kind in ("create", "upsert-new"):
            return (
                f"{said}. The opportunity may or may not have been created: check the CRM before calling "
                "again, or a duplicate may result."
            )
        return f"{said}. The change may or may not have been applied; calling again is safe."
    return f"{said}. Nothing was written."
