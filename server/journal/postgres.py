"""The journal on PostgreSQL, so that replicas behind a load balancer share idempotency keys, the
duplicate guard, the audit rows and the learned upsert shapes.

Uniqueness is the database's: a unique index on (tool, account, idempotency key) and a partial unique
index on pending guarded creates, with `INSERT … ON CONFLICT DO NOTHING`. The duplicate window (an
identical create finished a minute ago) is a read, so claims of one fingerprint are serialised by a
transaction-scoped advisory lock: check and insert are one step for every replica.

psycopg's pool is synchronous and the calls run in worker threads, so the pool lives outside any one
event loop and opens before the server starts (a database that cannot be reached fails the start).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import anyio.to_thread

from server.journal.base import SELECT_ROWS, STALE_AFTER, Claim, Outcome, Row, envelope_text, redacted, to_row

try:
    import psycopg
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("a postgresql:// journal needs psycopg: pip install 'opportunity-mcp[postgresql]'") from exc

_SCHEMA = """
CREATE TABLE IF NOT EXISTS writes (
    id BIGSERIAL PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    tool TEXT NOT NULL,
    account TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    args_fp TEXT,
    idem_key TEXT,
    guard BOOLEAN NOT NULL DEFAULT FALSE,
    outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'done', 'failed', 'unknown')),
    status INTEGER,
    opportunity_id TEXT,
    code TEXT,
    latency_ms INTEGER,
    requests INTEGER NOT NULL DEFAULT 0,
    envelope TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS writes_key ON writes(tool, account, idem_key) WHERE idem_key IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS writes_inflight ON writes(fingerprint) WHERE guard AND outcome = 'pending';
CREATE INDEX IF NOT EXISTS writes_recent ON writes(fingerprint, at);
CREATE TABLE IF NOT EXISTS upsert_shapes (
    location TEXT PRIMARY KEY, shape TEXT NOT NULL, at DOUBLE PRECISION NOT NULL
);
"""
# Any constant: replicas starting together take it so that only one creates the tables.
_SCHEMA_LOCK = 0x6F70706D6370  # "oppmcp"
_SELECT = SELECT_ROWS


def _lock_id(fp: str) -> int:
    """The advisory lock for one fingerprint: 64 bits of its hash, as PostgreSQL's signed bigint."""
    return int.from_bytes(hashlib.blake2b(fp.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresJournal:
    """A pool of connections to one PostgreSQL database; the tables are created when missing."""

    def __init__(self, url: str, *, max_size: int = 10, timeout: float = 10.0) -> None:
        self.where = redacted(url)
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, "application_name": "opportunity-mcp"},
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
        return await anyio.to_thread.run_sync(
            self._claim, time.time(), tool, account, fp, args_fp, key, guard, window, stale
        )

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
        stale: float,
    ) -> Claim:
        with self._pool.connection() as conn, conn.transaction():
            if guard:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(fp),))
            # A row still pending long after any call could have ended belongs to a process that died.
            conn.execute(
                "UPDATE writes SET outcome = 'unknown' WHERE outcome = 'pending' AND at < %s"
                " AND (fingerprint = %s OR (tool = %s AND account = %s AND idem_key = %s))",
                (now - stale, fp, tool, account, key),
            )
            if key is not None:
                earlier = self._by_key(conn, tool, account, key)
                if earlier is not None:
                    if earlier.outcome != "failed":
                        return Claim(None, earlier, "key")
                    conn.execute("DELETE FROM writes WHERE id = %s", (earlier.id,))
            if guard:
                earlier = self._recent_same(conn, fp, now - window)
                if earlier is not None:
                    return Claim(None, earlier, "inflight" if earlier.outcome == "pending" else "duplicate")
            # A concurrent claim of the same key commits first: this insert waits for it, then does nothing.
            found = conn.execute(
                "INSERT INTO writes (at, tool, account, fingerprint, args_fp, idem_key, guard, outcome)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending') ON CONFLICT DO NOTHING RETURNING id",
                (now, tool, account, fp, args_fp, key, guard),
            ).fetchone()
            if found is not None:
                return Claim(int(found[0]))
            earlier = self._by_key(conn, tool, account, key) if key is not None else None
            if earlier is None:
                earlier = self._recent_same(conn, fp, now - window)
            return Claim(None, earlier, "key" if key is not None else "inflight")

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
        params = (outcome, status, opportunity_id, code, latency_ms, requests, envelope_text(envelope), row_id)
        await anyio.to_thread.run_sync(self._execute, _FINISH, params)

    async def recent(self, limit: int = 20) -> list[Row]:
        rows = await anyio.to_thread.run_sync(self._fetch, f"{_SELECT} ORDER BY id DESC LIMIT %s", (limit,))
        return [to_row(r) for r in rows]

    async def ping(self) -> None:
        await anyio.to_thread.run_sync(self._fetch, "SELECT id FROM writes ORDER BY id DESC LIMIT 1", ())

    async def counts(self) -> dict[str, int]:
        found = await anyio.to_thread.run_sync(self._fetch, "SELECT outcome, COUNT(*) FROM writes GROUP BY outcome", ())
        return {str(outcome): int(count) for outcome, count in found}

    async def learned_shape(self, location: str) -> str | None:
        found = await anyio.to_thread.run_sync(
            self._fetch, "SELECT shape FROM upsert_shapes WHERE location = %s", (location,)
        )
        return str(found[0][0]) if found else None

    async def learn_shape(self, location: str, shape: str) -> None:
        await anyio.to_thread.run_sync(
            self._execute,
            "INSERT INTO upsert_shapes (location, shape, at) VALUES (%s, %s, %s)"
            " ON CONFLICT (location) DO UPDATE SET shape = excluded.shape, at = excluded.at",
            (location, shape, time.time()),
        )

    def _execute(self, query: str, params: tuple[Any, ...]) -> None:
        with self._pool.connection() as conn:
            conn.execute(query, params)

    def _fetch(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            return conn.execute(query, params).fetchall()

    @staticmethod
    def _by_key(conn: psycopg.Connection[Any], tool: str, account: str, key: str) -> Row | None:
        found = conn.execute(
            f"{_SELECT} WHERE tool = %s AND account = %s AND idem_key = %s",
            (tool, account, key),
        ).fetchone()
        return to_row(found) if found else None

    @staticmethod
    def _recent_same(conn: psycopg.Connection[Any], fp: str, since: float) -> Row | None:
        found = conn.execute(
            f"{_SELECT} WHERE fingerprint = %s AND guard AND at >= %s"
            " AND outcome IN ('pending', 'done', 'unknown') ORDER BY id DESC LIMIT 1",
            (fp, since),
        ).fetchone()
        return to_row(found) if found else None


_FINISH = (
    "UPDATE writes SET outcome = %s, status = %s, opportunity_id = %s, code = %s, latency_ms = %s,"
    " requests = %s, envelope = %s WHERE id = %s"
)
