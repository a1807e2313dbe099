"""The journal's tables, written once for every SQL backend, and the connection as the shared code
uses it (queries written with `?`, each backend's placeholder put in once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

SELECT = (
    "SELECT id, at, tool, account, idem_key, outcome, status, opportunity_id, code, latency_ms, requests, envelope,"
    " args_fp, owner, intent FROM writes"
)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS writes (
    id {id_type} PRIMARY KEY,
    at {real} NOT NULL,
    tool TEXT NOT NULL,
    account TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    args_fp TEXT,
    idem_key TEXT,
    guard {boolean} NOT NULL DEFAULT FALSE,
    outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'done', 'failed', 'unknown')),
    status INTEGER,
    opportunity_id TEXT,
    code TEXT,
    latency_ms INTEGER,
    requests INTEGER NOT NULL DEFAULT 0,
    envelope TEXT,
    owner TEXT,
    intent TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS writes_key ON writes(tool, account, idem_key) WHERE idem_key IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS writes_inflight ON writes(fingerprint) WHERE guard = TRUE AND outcome = 'pending';
CREATE INDEX IF NOT EXISTS writes_recent ON writes(fingerprint, at);
CREATE TABLE IF NOT EXISTS upsert_shapes (location TEXT PRIMARY KEY, shape TEXT NOT NULL, at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS heartbeat (id INTEGER PRIMARY KEY, at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS oauth_clients (client_id TEXT PRIMARY KEY, info TEXT NOT NULL, at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS oauth_grants (
    digest TEXT PRIMARY KEY, kind TEXT NOT NULL, client_id TEXT NOT NULL, data TEXT NOT NULL, expires {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_tries (key TEXT PRIMARY KEY, count INTEGER NOT NULL, since {real} NOT NULL);
"""
# Columns added after the first release: a journal made before them gets them on start.
ADDED_COLUMNS = ("owner", "intent")
# The health probe's write: one row, rewritten, so that "can the journal be written" is asked for real.
HEARTBEAT = "INSERT INTO heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at"


def schema(*, id_type: str, real: str, boolean: str) -> str:
    """The tables and indexes, in a backend's column types."""
    return _SCHEMA.format(id_type=id_type, real=real, boolean=boolean)


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, query: Any, params: Any = ...) -> Any: ...


class Sql:
    """A connection as the shared code uses it, with the backend's placeholder put in."""

    def __init__(self, conn: Connection, placeholder: str) -> None:
        self.conn, self.placeholder = conn, placeholder

    def run(self, query: str, params: Sequence[Any] = ()) -> Any:
        if self.placeholder != "?":
            query = query.replace("?", self.placeholder)
        return self.conn.execute(query, params)

    def one(self, query: str, params: Sequence[Any] = ()) -> Any:
        return self.run(query, params).fetchone()

    def all(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.run(query, params).fetchall())
