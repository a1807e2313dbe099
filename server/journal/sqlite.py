"""The journal in one SQLite file (the default): WAL mode, safe for several processes on one machine.

Statements are short and local, so the async methods run them inline rather than hopping to a thread.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from server.journal.base import SELECT_ROWS, STALE_AFTER, Claim, Outcome, Row, envelope_text, to_row

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

_SELECT = SELECT_ROWS


class SqliteJournal:
    """One SQLite connection per process, guarded by a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = self.where = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            # Switching a new file to WAL needs a moment alone with it: processes opening it together
            # may be told "locked" at once, without the busy timeout. Try again for a while.
            for attempt in range(100):
                try:
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.executescript(_SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == 99:
                        raise
                    time.sleep(0.05)
            # NORMAL in WAL mode syncs at checkpoints, not on every commit: a power cut may lose the
            # last rows, never corrupt the file. The CRM, not this file, holds the deals.
            self._db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def claim(
        self,
        *,
        tool: str,
        account: str,
        fp: str,
        args_fp: str,
        key: str | None,
        guard: bool,
        window: float,
        stale: float = STALE_AFTER,
    ) -> Claim:
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
                claim = self._claim(now, tool, account, fp, args_fp, key, guard, window, stale)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return claim

    def _claim(
        self,
        now: float,
        tool: str,
        account: str,
        fp: str,
        args_fp: str,
        key: str | None,
        guard: bool,
        window: float,
        stale: float = STALE_AFTER,
    ) -> Claim:
        # A row still pending long after any call could have ended belongs to a process that died.
        self._db.execute(
            "UPDATE writes SET outcome = 'unknown' WHERE outcome = 'pending' AND at < ?"
            " AND (fingerprint = ? OR (tool = ? AND account = ? AND idem_key = ?))",
            (now - stale, fp, tool, account, key),
        )
        if key is not None:
            earlier = self._by_key(tool, account, key)
            if earlier is not None:
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

    async def finish(
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
                (outcome, status, opportunity_id, code, latency_ms, requests, envelope_text(envelope), row_id),
            )

    async def recent(self, limit: int = 20) -> list[Row]:
        with self._lock:
            rows = self._db.execute(f"{_SELECT} ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [to_row(r) for r in rows]

    async def ping(self) -> None:
        with self._lock:
            self._db.execute("SELECT id FROM writes ORDER BY id DESC LIMIT 1").fetchall()

    async def counts(self) -> dict[str, int]:
        with self._lock:
            found = self._db.execute("SELECT outcome, COUNT(*) FROM writes GROUP BY outcome").fetchall()
        return {outcome: count for outcome, count in found}

    async def learned_shape(self, location: str) -> str | None:
        with self._lock:
            found = self._db.execute("SELECT shape FROM upsert_shapes WHERE location = ?", (location,)).fetchone()
        return found[0] if found else None

    async def learn_shape(self, location: str, shape: str) -> None:
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
        return to_row(found) if found else None

    def _recent_same(self, fp: str, since: float) -> Row | None:
        found = self._db.execute(
            f"{_SELECT} WHERE fingerprint = ? AND guard = 1 AND at >= ? AND outcome IN ('pending', 'done', 'unknown')"
            " ORDER BY id DESC LIMIT 1",
            (fp, since),
        ).fetchone()
        return to_row(found) if found else None
