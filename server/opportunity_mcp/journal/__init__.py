"""The write journal: every write attempt is recorded before its HTTP call and completed after it.

It makes repeated calls harmless. A call with an idempotency key seen before is answered from the
journal; an identical create (same account, name, contact, amount, description) inside the
duplicate window is answered as already done, or refused while its outcome is unknown.

Rows hold no secret and no raw body: time, tool, account, fingerprint, key, outcome, upstream
status, opportunity id and code, latency, and the envelope the agent was given. The store is one
SQLite file by default, or a PostgreSQL database (`postgresql://…`) shared by replicas.
"""

from __future__ import annotations

from pathlib import Path

from opportunity_mcp.journal.base import (
    Claim,
    Finish,
    JournalUnavailable,
    Outcome,
    Row,
    default_path,
    fingerprint,
    redacted,
)
from opportunity_mcp.journal.sql import Journal
from opportunity_mcp.journal.sqlite import SqliteJournal

__all__ = [
    "Claim",
    "Finish",
    "Journal",
    "JournalUnavailable",
    "Outcome",
    "Row",
    "SqliteJournal",
    "default_path",
    "fingerprint",
    "is_postgres",
    "open_journal",
    "redacted",
]


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def open_journal(target: str | Path) -> Journal:
    """The store `target` names: a postgresql:// URL, or a SQLite file path ("" for the default)."""
    target = str(target)
    if is_postgres(target):
        from opportunity_mcp.journal.postgres import PostgresJournal

        return PostgresJournal(target)
    return SqliteJournal(target or default_path())
