"""The claim algorithm, inside a backend's write: the common case in one statement (`first_claim`), and
the whole algorithm in one write transaction (`claim_in`): rows of dead processes become unknown, a
repeated key or an identical recent create is answered from its earlier row, else a pending row is
inserted. The database's unique indexes (a key per tool and account; one pending guarded create per
fingerprint) make two racing claims end with one winner: the loser's insert does nothing and it
reads the winner."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from opportunity_mcp.journal.base import Claim, Row, owner, owner_dead, to_row
from opportunity_mcp.journal.tables import SELECT, Sql


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    tool: str
    account: str
    fp: str
    args_fp: str
    key: str | None
    guard: bool
    window: float
    stale: float
    now: float
    intent: str | None = None


def claim_in(db: Sql, req: ClaimRequest) -> Claim:
    """The claim algorithm, inside the backend's write transaction."""
    if req.key is None and not req.guard:
        # Nothing to check against: a plain insert.
        return Claim(_insert(db, req))
    if req.key is not None:
        earlier = _by_key(db, req)
        if earlier is not None:
            earlier = settled(db, earlier, req.now - req.stale)
            if earlier.outcome != "failed":
                return Claim(None, earlier, "key")
            db.run("DELETE FROM writes WHERE id = ?", (earlier.id,))  # a surely failed write may be retried
    if req.guard:
        earlier = _recent_same(db, req)
        if earlier is not None:
            earlier = settled(db, earlier, req.now - req.stale)
            return Claim(None, earlier, "inflight" if earlier.outcome == "pending" else "duplicate")
    row_id = _insert(db, req)
    if row_id is None:
        # A row the look-ups did not see holds the key or the pending create: another process's
        # claim of a moment ago, or a pending create older than the window whose process died.
        # Settle the dead ones, then try once more.
        holders = db.all(
            f"{SELECT} WHERE outcome = 'pending' AND (fingerprint = ? OR (tool = ? AND account = ? AND idem_key = ?))",
            (req.fp, req.tool, req.account, req.key),
        )
        for holder in holders:
            settled(db, to_row(holder), req.now - req.stale)
        row_id = _insert(db, req)
    if row_id is not None:
        return Claim(row_id)
    # Another process claimed the same key, or the same create, a moment ago.
    earlier = _by_key(db, req) if req.key is not None else None
    return Claim(None, earlier or _recent_same(db, req), "key" if req.key is not None else "inflight")


def first_claim(db: Sql, req: ClaimRequest) -> int | None:
    """The common claim (a key not seen before, no identical recent create) in one statement, outside
    a transaction: the id of the row it inserted, or None when anything stood in its way (a key or a
    pending create the unique indexes hold, an identical create in the window), which `claim_in` then
    sorts out. One statement is atomic, and the indexes still decide races."""
    same = (
        " WHERE NOT EXISTS (SELECT 1 FROM writes WHERE fingerprint = ? AND guard = TRUE AND at >= ?"
        " AND outcome IN ('pending', 'done', 'unknown'))"
        if req.guard
        else " WHERE TRUE"  # SQLite needs a WHERE between an INSERT's SELECT and its ON CONFLICT
    )
    found = db.all(
        "INSERT INTO writes (at, tool, account, fingerprint, args_fp, idem_key, guard, outcome, owner, intent)"
        f" SELECT ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?{same} ON CONFLICT DO NOTHING RETURNING id",
        (
            req.now,
            req.tool,
            req.account,
            req.fp,
            req.args_fp,
            req.key,
            req.guard,
            owner(),
            req.intent,
            *((req.fp, req.now - req.window) if req.guard else ()),
        ),
    )
    return int(found[0][0]) if found else None


def settled(db: Sql, row: Row, stale_before: float) -> Row:
    """The row, marked unknown if it is still pending while its process is gone: long after any call
    could have ended, or at once when that process ran on this host and no longer does (a crash, a
    SIGKILL). Settled when met, so the common path pays no extra statement."""
    if row.outcome != "pending" or (row.at >= stale_before and not owner_dead(row.owner)):
        return row
    # Its latency becomes "ended by now": a write is read back as absent only a settle time after it.
    took = round((time.time() - row.at) * 1000)
    db.run("UPDATE writes SET outcome = 'unknown', latency_ms = ? WHERE id = ? AND outcome = 'pending'", (took, row.id))
    return dataclasses.replace(row, outcome="unknown", latency_ms=took)


def _insert(db: Sql, req: ClaimRequest) -> int | None:
    # fetched whole: SQLite finishes (and, outside a transaction, commits) a statement once it is read out
    found = db.all(
        "INSERT INTO writes (at, tool, account, fingerprint, args_fp, idem_key, guard, outcome, owner, intent)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING RETURNING id",
        (req.now, req.tool, req.account, req.fp, req.args_fp, req.key, req.guard, owner(), req.intent),
    )
    return int(found[0][0]) if found else None


def _by_key(db: Sql, req: ClaimRequest) -> Row | None:
    found = db.one(
        f"{SELECT} WHERE tool = ? AND account = ? AND idem_key = ?",
        (req.tool, req.account, req.key),
    )
    return to_row(found) if found else None


def _recent_same(db: Sql, req: ClaimRequest) -> Row | None:
    found = db.one(
        f"{SELECT} WHERE fingerprint = ? AND guard = TRUE AND at >= ?"
        " AND outcome IN ('pending', 'done', 'unknown') ORDER BY id DESC LIMIT 1",
        (req.fp, req.now - req.window),
    )
    return to_row(found) if found else None
