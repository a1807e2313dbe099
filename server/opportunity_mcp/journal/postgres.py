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
from typing import TypeVar

import anyio.to_thread

from opportunity_mcp.journal.base import redacted
from opportunity_mcp.journal.sql import Journal, Sql, schema

try:
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("a postgresql:// journal needs psycopg: pip install 'opportunity-mcp[postgresql]'") from exc

_SCHEMA = schema(id_type="BIGSERIAL", real="DOUBLE PRECISION", boolean="BOOLEAN")
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
            kwargs={"autocommit": True, "application_name": "opportunity-mcp", "connect_timeout": 3},
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

    async def _write(self, fn: Callable[[Sql], T], *, atomic: bool, lock: str | None = None) -> T:
        return await anyio.to_thread.run_sync(self._in_transaction, fn, atomic, lock)

    async def _read(self, fn: Callable[[Sql], T]) -> T:
        return await anyio.to_thread.run_sync(self._in_transaction, fn, False, None)

    def _in_transaction(self, fn: Callable[[Sql], T], atomic: bool, lock: str | None) -> T:
        with self._pool.connection(timeout=OPERATION_TIMEOUT) as conn:
            if not atomic:
                return fn(Sql(conn, "%s"))
            with conn.transaction():
                if lock is not None:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(lock),))
                return fn(Sql(conn, "%s"))
