"""The journal on PostgreSQL, so that replicas behind a load balancer share idempotency keys, the
duplicate guard, the audit rows and the learned upsert shapes.

Uniqueness is the database's: a unique index on (tool, account, idempotency key) and a partial unique
index on pending guarded creates, with `INSERT … ON CONFLICT DO NOTHING`. The duplicate window (an
identical create finished a minute ago) is a read, so claims of one fingerprint are serialised by a
transaction-scoped advisory lock: check and insert are one step for every replica. The queries and
the claim algorithm are `sql`'s, shared with SQLite.

psycopg's pool is synchronous and the calls run in worker threads, so the pool lives outside any one
event loop and opens before the server starts (a database that cannot be reached fails the start).
Each connection is checked as it leaves the pool, so a database restart costs no failed write: the
dead connections are replaced. While the database is unreachable, a write waits at most
`OPERATION_TIMEOUT` for a connection and is then refused, unsent (the journal fails closed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from opportunity_mcp.journal.base import SharedWindow, redacted
from opportunity_mcp.journal.sql import Journal
from opportunity_mcp.journal.tables import ADDED_COLUMNS, Sql, schema

try:
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("a postgresql:// journal needs psycopg: pip install 'opportunity-mcp[postgresql]'") from exc

_ADD_COLUMN = (
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
    " AND table_name = 'writes' AND column_name = '{column}') THEN ALTER TABLE writes ADD COLUMN {column} TEXT;"
    " END IF; END $$;"
)
_SCHEMA = schema(id_type="BIGSERIAL", real="DOUBLE PRECISION", boolean="BOOLEAN") + (
    # The shared rate-limit windows: per key, the times (database clock) of the requests granted.
    "CREATE TABLE IF NOT EXISTS rate_windows (key TEXT PRIMARY KEY, hits DOUBLE PRECISION[] NOT NULL,"
    " granted BOOLEAN NOT NULL);" + "".join(_ADD_COLUMN.format(column=column) for column in ADDED_COLUMNS)
    # A journal made before rows recorded their claimant or what they sent (checked first: ALTER
    # TABLE would lock the table on every start even when there is nothing to add).
)
# One atomic statement per request: the row lock of INSERT … ON CONFLICT DO UPDATE serialises the
# replicas, the database's clock times them all. EXCLUDED.hits[1] is when the statement began, which
# decides what has left the window (erring towards keeping); a granted request is stamped when the
# row is ours, after any wait for the lock, so that it cannot leave the window early.
_TAKE = """
INSERT INTO rate_windows AS r (key, hits, granted)
VALUES (%(key)s, ARRAY[extract(epoch FROM clock_timestamp())::float8], TRUE)
ON CONFLICT (key) DO UPDATE SET
    granted = (SELECT count(*) FROM unnest(r.hits) h WHERE h > EXCLUDED.hits[1] - %(window)s) < %(limit)s,
    hits = ARRAY(SELECT h FROM unnest(r.hits) h WHERE h > EXCLUDED.hits[1] - %(window)s ORDER BY h)
        || CASE WHEN (SELECT count(*) FROM unnest(r.hits) h WHERE h > EXCLUDED.hits[1] - %(window)s) < %(limit)s
           THEN ARRAY[extract(epoch FROM clock_timestamp())::float8] ELSE ARRAY[]::float8[] END
RETURNING granted, cardinality(hits), hits[1], hits[cardinality(hits)], extract(epoch FROM clock_timestamp())::float8
"""
# A request answered late is counted again as of now (it may have reached the CRM late).
_TOUCH = """
UPDATE rate_windows r
SET hits = ARRAY(SELECT h FROM unnest(array_replace(r.hits, %(stamp)s::float8, c.now)) h ORDER BY h)
FROM (SELECT extract(epoch FROM clock_timestamp())::float8 AS now) c
WHERE r.key = %(key)s
"""
# Stand-in requests, so that the window holds at least %(count)s for the next %(seconds)s.
_HOLD = """
UPDATE rate_windows r SET hits = ARRAY(
    SELECT h FROM (
        SELECT h FROM unnest(r.hits) h WHERE h > c.now - %(window)s
        UNION ALL
        SELECT c.now + %(seconds)s - %(window)s FROM generate_series(1, GREATEST(0, %(count)s
            - (SELECT count(*) FROM unnest(r.hits) h WHERE h > c.now - %(window)s)::int))
    ) AS kept(h) ORDER BY h)
FROM (SELECT extract(epoch FROM clock_timestamp())::float8 AS now) c
WHERE r.key = %(key)s
"""
# Any constant: replicas starting together take it so that only one creates the tables.
_SCHEMA_LOCK = 0x6F70706D6370  # "oppmcp"
# How long a journal operation waits for a connection before it fails: short, so that a write
# refused because the database is gone is refused within an agent's patience.
OPERATION_TIMEOUT = 3.0
T = TypeVar("T")


def _lock_id(fp: str) -> int:
    """The advisory lock for one fingerprint: 64 bits of its hash, as PostgreSQL's signed bigint."""
    return int.from_bytes(hashlib.blake2b(fp.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresJournal(Journal):
    """A pool of connections to one PostgreSQL database; the tables are created when missing."""

    def __init__(self, url: str, *, max_size: int = 10, timeout: float = 10.0) -> None:
        self.where = redacted(url)
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            kwargs={
                "autocommit": True,
                "application_name": "opportunity-mcp",
                "connect_timeout": 3,
                # A database host that stops answering is noticed in seconds, not at TCP's pace.
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                "tcp_user_timeout": 10000,
                "options": "-c statement_timeout=5000",
            },
            check=ConnectionPool.check_connection,
            open=False,
        )
        self._pool.open(wait=True, timeout=timeout)
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute(_SCHEMA)
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    def shared_window(self) -> SharedWindow:
        return _PostgresWindow(self)

    async def _write(self, fn: Callable[[Sql], T], *, atomic: bool, lock: str | None = None) -> T:
        return await anyio.to_thread.run_sync(self._in_transaction, fn, atomic, lock)

    async def _read(self, fn: Callable[[Sql], T]) -> T:
        return await anyio.to_thread.run_sync(self._in_transaction, fn, False, None)

    async def statement(self, query: str, params: dict[str, object], returns: bool = True) -> Any:
        """One statement outside the journal's tables (the shared rate window): its first row."""

        def run() -> Any:
            with self._pool.connection(timeout=OPERATION_TIMEOUT) as conn:
                cursor = conn.execute(query, params)
                return cursor.fetchone() if returns else None

        return await anyio.to_thread.run_sync(run)

    def _in_transaction(self, fn: Callable[[Sql], T], atomic: bool, lock: str | None) -> T:
        with self._pool.connection(timeout=OPERATION_TIMEOUT) as conn:
            if not atomic:
                return fn(Sql(conn, "%s"))
            with conn.transaction():
                if lock is not None:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(lock),))
                return fn(Sql(conn, "%s"))


class _PostgresWindow:
    """The rate-limit window in the database, shared by every replica on it."""

    def __init__(self, journal: PostgresJournal) -> None:
        self._journal = journal

    async def take(self, key: str, limit: int, window: float) -> tuple[float, int, float]:
        params = {"key": key, "limit": limit, "window": window}
        # Granted, the new stamp is the array's last element (appended after the sorted survivors);
        # refused, the array is the sorted survivors and its first is the oldest.
        granted, count, oldest, newest, now = await self._journal.statement(_TAKE, params)
        if granted:
            return 0.0, int(count), float(newest)
        return max(0.01, oldest + window - now), int(count), 0.0

    async def touch(self, key: str, stamp: float) -> None:
        await self._journal.statement(_TOUCH, {"key": key, "stamp": stamp}, False)

    async def hold(self, key: str, count: int, window: float, seconds: float) -> None:
        await self._journal.statement(_HOLD, {"key": key, "count": count, "window": window, "seconds": seconds}, False)
