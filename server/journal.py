"""The write journal: every write attempt is recorded before its HTTP call and completed after it.

It makes repeated calls harmless. A call with an idempotency key seen before is answered from the
journal; an identical create (same account, name, contact, amount, description) inside the
duplicate window is answered as already done, or refused while its outcome is unknown. Uniqueness
comes from database constraints, not from a read-then-write race: an idempotency key is unique per
tool and account, and only one identical create may be in flight at a time.

Rows hold no secret and no raw body: time, tool, account, fingerprint, key, outcome, upstream
status, opportunity id and code, latency, and the envelope the agent was given. SQLite in WAL mode
is safe for several processes sharing one file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["pending", "done", "failed", "unknown"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS writes (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    tool TEXT NOT NULL,
    account TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    args_fp TEXT,
    idem_key TEXT,
    guard INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL,
    status INTEGER,
    opportunity_id TEXT,
    code TEXT,
    latency_ms INTEGER,
    requests INTEGER NOT NULL DEFAULT 0,
    envelope TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS writes_key ON writes(tool, account, idem_key) WHERE idem_key IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS writes_inflight ON writes(fingerprint) WHERE guard = 1 AND outcome = 'pending';
CREATE INDEX IF NOT EXISTS writes_recent ON writes(fingerprint, at);
CREATE TABLE IF NOT EXISTS upsert_shapes (location TEXT PRIMARY KEY, shape TEXT NOT NULL, at REAL NOT NULL);
"""


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "opportunity-mcp" / "journal.sqlite3"


def fingerprint(tool: str, account: str, fields: dict[str, Any]) -> str:
    """A stable hash of what makes two writes 'the same': text compared trimmed and case-folded."""
    norm = {k: (" ".join(v.split()).casefold() if isinstance(v, str) else v) for k, v in sorted(fields.items())}
    raw = json.dumps([tool, account, norm], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    at: float
    tool: str
    account: str
    idem_key: str | None
    outcome: Outcome
    status: int | None
    opportunity_id: str | None
    code: str | None
    latency_ms: int | None
    requests: int
    envelope: dict[str, Any] | None
    args_fp: str | None


@dataclass(frozen=True, slots=True)
class Claim:
    """The journal's answer before a write: go ahead (`row_id`), or here is what happened before."""

    row_id: int | None
    earlier: Row | None = None
    reason: Literal["key", "duplicate", "inflight"] | None = None


class Journal:
    """One SQLite connection per process, guarded by a lock; statements are short."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode syncs at checkpoints, not on every commit: a power cut may lose the
            # last rows, never corrupt the file. The CRM, not this file, holds the deals.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def claim(
        self, *, tool: str, account: str, fp: str, args_fp: str, key: str | None, guard: bool, window: float
    ) -> Claim:
        """Record a pending write, or return the earlier write that makes this one a repeat.

        `fp` identifies 'the same deal' for the duplicate guard (when `guard`); `args_fp` identifies
        the exact arguments, so a repeated key can tell whether they changed."""
        now = time.time()
        with self._lock:
            if key is None and not guard:
                # Nothing to check against: a plain insert is already atomic.
                cur = self._db.execute(
                    "INSERT INTO writes (at, tool, account, fingerprint, args_fp, outcome)"
                    " VALUES (?, ?, ?, ?, ?, 'pending')",
                    (now, tool, account, fp, args_fp),
                )
                assert cur.lastrowid is not None
                return Claim(cur.lastrowid)
            # IMMEDIATE takes the write lock up front: check and insert are one step for every
            # process sharing the file.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                claim = self._claim(now, tool, account, fp, args_fp, key, guard, window)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return claim

    def _claim(
        self, now: float, tool: str, account: str, fp: str, args_fp: str, key: str | None, guard: bool, window: float
    ) -> Claim:
        if key is not None:
            earlier = self._by_key(tool, account, key)
            if earlier is not None:
                # A key whose write surely failed may be used again; anything else is answered.
                if earlier.outcome != "failed":
                    return Claim(None, earlier, "key")
                self._db.execute("DELETE FROM writes WHERE id = ?", (earlier.id,))
        if guard:
            earlier = self._recent_same(fp, now - window)
            if earlier is not None:
                return Claim(None, earlier, "inflight" if earlier.outcome == "pending" else "duplicate")
        try:
            cur = self._db.execute(
                "INSERT INTO writes (at, tool, account, fingerprint, args_fp, idem_key, guard, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                (now, tool, account, fp, args_fp, key, 1 if guard else 0),
            )
        except sqlite3.IntegrityError:
            # Another process claimed the same key, or the same create, a moment ago.
            earlier = self._by_key(tool, account, key) if key is not None else None
            if earlier is None:
                earlier = self._recent_same(fp, now - window)
            return Claim(None, earlier, "key" if key is not None else "inflight")
        assert cur.lastrowid is not None
        return Claim(cur.lastrowid)

    def finish(
        self,
        row_id: int,
        outcome: Outcome,
        *,
        status: int | None = None,
        opportunity_id: str | None = None,
        code: str | None = None,
        latency_ms: int | None = None,
        requests: int = 0,
        envelope: dict[str, Any] | None = None,
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE writes SET outcome = ?, status = ?, opportunity_id = ?, code = ?, latency_ms = ?,"
                " requests = ?, envelope = ? WHERE id = ?",
                (
                    outcome,
                    status,
                    opportunity_id,
                    code,
                    latency_ms,
                    requests,
                    json.dumps(envelope, separators=(",", ":")) if envelope is not None else None,
                    row_id,
                ),
            )

    def recent(self, limit: int = 20) -> list[Row]:
        with self._lock:
            rows = self._db.execute(f"{_SELECT} ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_row(r) for r in rows]

    def ping(self) -> None:
        """A constant-time read, for health probes (raises if the database cannot be read)."""
        with self._lock:
            self._db.execute("SELECT id FROM writes ORDER BY id DESC LIMIT 1").fetchall()

    def counts(self) -> dict[str, int]:
        with self._lock:
            found = self._db.execute("SELECT outcome, COUNT(*) FROM writes GROUP BY outcome").fetchall()
        return {outcome: count for outcome, count in found}

    def learned_shape(self, location: str) -> str | None:
        with self._lock:
            found = self._db.execute("SELECT shape FROM upsert_shapes WHERE location = ?", (location,)).fetchone()
        return found[0] if found else None

    def learn_shape(self, location: str, shape: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO upsert_shapes (location, shape, at) VALUES (?, ?, ?)"
                " ON CONFLICT(location) DO UPDATE SET shape = excluded.shape, at = excluded.at",
                (location, shape, time.time()),
            )

    def _by_key(self, tool: str, account: str, key: str) -> Row | None:
        found = self._db.execute(
            f"{_SELECT} WHERE tool = ? AND account = ? AND idem_key = ?", (tool, account, key)
        ).fetchone()
        return _row(found) if found else None

    def _recent_same(self, fp: str, since: float) -> Row | None:
        found = self._db.execute(
            f"{_SELECT} WHERE fingerprint = ? AND guard = 1 AND at >= ? AND outcome IN ('pending', 'done', 'unknown')"
            " ORDER BY id DESC LIMIT 1",
            (fp, since),
        ).fetchone()
        return _row(found) if found else None


_SELECT = (
    "SELECT id, at, tool, account, idem_key, outcome, status, opportunity_id, code, latency_ms, requests, envelope,"
    " args_fp"
    " FROM writes"
)


def _row(r: tuple[Any, ...]) -> Row:
    return Row(
        id=r[0],
        at=r[1],
        tool=r[2],
        account=r[3],
        idem_key=r[4],
        outcome=r[5],
        status=r[6],
        opportunity_id=r[7],
        code=r[8],
        latency_ms=r[9],
        requests=r[10],
        envelope=json.loads(r[11]) if r[11] else None,
        args_fp=r[12],
    )
