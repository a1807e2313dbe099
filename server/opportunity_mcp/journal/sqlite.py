"""The journal in one SQLite file (the default): WAL mode, safe for several processes on one machine.

Statements are short and local, so they run inline on the event loop, on a connection that never
waits for a lock. When another process holds the file's write lock (or a worker thread holds this
process's connection), the statement goes to a worker thread instead, on a second connection that
waits up to the busy timeout: a lock held elsewhere never freezes the other calls of this process.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from opportunity_mcp.journal.sql import Journal
from opportunity_mcp.journal.tables import ADDED_COLUMNS, Sql, schema

T = TypeVar("T")
BUSY_TIMEOUT = 10.0

# INTEGER PRIMARY KEY is the rowid: the id SQLite hands out anyway.
_SCHEMA = schema(id_type="INTEGER", real="REAL", boolean="BOOLEAN")


def _private(path: Path) -> None:
    """The journal holds names, phones and message ids: its folder is created owner-only (0700) and
    the file and its WAL companions owner-only (0600), whatever the umask."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(path.parent, 0o700)  # mkdir's mode is filtered by the umask
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            descriptor = os.open(name, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            continue  # unwritable here: sqlite says so in its own words when it opens the file
        os.close(descriptor)
        if name.stat().st_uid == os.getuid():
            os.chmod(name, 0o600)


class _Connection:
    """One sqlite3 connection and the lock that keeps it to one user at a time."""

    def __init__(self, path: str, timeout: float) -> None:
        self.db = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
        # A setting of the connection, not of the file: each connection needs it. NORMAL in WAL mode
        # syncs at checkpoints, not on every commit: a power cut may lose the last rows, never
        # corrupt the file. The CRM, not this file, holds the deals.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.lock = threading.Lock()
        self.sql = Sql(self.db, "?")

    def run(self, fn: Callable[[Sql], T], atomic: bool) -> T:
        """Run `fn` (the caller holds the lock); as one IMMEDIATE transaction when `atomic`, which
        takes the write lock up front, so check and insert are one step for every process."""
        if not atomic:
            return fn(self.sql)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(self.sql)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return result


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class SqliteJournal(Journal):
    def __init__(self, path: str | Path) -> None:
        self.path = self.where = str(path)
        memory = self.path == ":memory:"
        if not memory:
            _private(Path(self.path))
        # The waiting connection opens first and sets the file up; a memory database is one connection.
        self._waiting = _Connection(self.path, BUSY_TIMEOUT)
        self._setup(self._waiting.db)
        self._inline = self._waiting if memory else _Connection(self.path, 0)

    @staticmethod
    def _setup(db: sqlite3.Connection) -> None:
        # Switching a new file to WAL needs a moment alone with it: processes opening it together
        # may be told "locked" at once, without the busy timeout. Try again for a while.
        for attempt in range(100):
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                have = {row[1] for row in db.execute("PRAGMA table_info(writes)")}
                for column in (c for c in ADDED_COLUMNS if c not in have):  # a journal from before it
                    try:
                        db.execute(f"ALTER TABLE writes ADD COLUMN {column} TEXT")
                    except sqlite3.OperationalError as exc:  # another process added it a moment ago
                        if "duplicate column" not in str(exc):
                            raise
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        for conn in {id(c): c for c in (self._inline, self._waiting)}.values():
            with conn.lock:
                conn.db.close()

    async def _write(self, fn: Callable[[Sql], T], *, atomic: bool, lock: str | None = None) -> T:
        # One writer at a time across processes is SQLite's own rule, so `lock` needs nothing more.
        return await self._run(fn, atomic)

    async def _read(self, fn: Callable[[Sql], T]) -> T:
        return await self._run(fn, False)

    async def _run(self, fn: Callable[[Sql], T], atomic: bool) -> T:
        inline = self._inline
        if inline is self._waiting:  # a memory database: no other process can hold it
            with inline.lock:
                return inline.run(fn, atomic)
        if inline.lock.acquire(blocking=False):
            try:
                return inline.run(fn, atomic)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                # Nothing was done (the transaction, if any, was rolled back): wait off the loop.
            finally:
                inline.lock.release()
        return await anyio.to_thread.run_sync(self._run_waiting, fn, atomic)

    def _run_waiting(self, fn: Callable[[Sql], T], atomic: bool) -> T:
        with self._waiting.lock:
            return self._waiting.run(fn, atomic)
