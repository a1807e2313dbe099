"""The journal over a SQL database, written once: every query (the claim's are in `claims`). A
backend (SQLite, PostgreSQL) supplies its schema, its connections and how a write is made atomic and
where it waits; the queries are written with `?` and each backend's placeholder is put in once.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from typing import TypeVar

from opportunity_mcp.journal.base import (
    STALE_AFTER,
    Claim,
    Finish,
    JournalUnavailable,
    Row,
    SharedWindow,
    envelope_text,
    to_row,
)
from opportunity_mcp.journal.claims import ClaimRequest, claim_in, first_claim, settled
from opportunity_mcp.journal.oauth import OAuthStore
from opportunity_mcp.journal.shapes import ShapeStore
from opportunity_mcp.journal.tables import HEARTBEAT, SELECT, Sql

T = TypeVar("T")


class Journal(ShapeStore, OAuthStore, ABC):
    """A journal store: the interface the tools use, over `_write` and `_read`, which each backend
    provides. `where` names the store for people (never with a password)."""

    where: str

    @abstractmethod
    async def _write(self, fn: Callable[[Sql], T], *, atomic: bool, lock: str | None = None) -> T:
        """Run `fn` as one write (in a transaction when `atomic`; claims of one `lock` serialised)."""

    @abstractmethod
    async def _read(self, fn: Callable[[Sql], T]) -> T: ...

    @abstractmethod
    def close(self) -> None: ...

    def shared_window(self) -> SharedWindow | None:
        """The rate-limit window replicas share through this store; None when the store is this
        process's own (SQLite: each process keeps its window)."""
        return None

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
        intent: str | None = None,
    ) -> Claim:
        """Record a pending write, or return the earlier write that makes this one a repeat.

        `fp` identifies 'the same deal' for the duplicate guard (when `guard`); `args_fp` identifies
        the exact arguments, so a repeated key can tell whether they changed. A key whose write surely
        failed may be used again. A pending row older than `stale` seconds (its process died) is
        first marked unknown. `intent` (JSON) is what reading the write back needs, kept with the row
        so that an unknown outcome can be settled later."""
        req = ClaimRequest(tool, account, fp, args_fp, key, guard, window, stale, time.time(), intent)
        checks = key is not None or guard
        try:
            if checks:  # the common case first, in one statement; anything in its way, in a transaction
                row_id = await self._write(lambda db: first_claim(db, req), atomic=False)
                if row_id is not None:
                    return Claim(row_id)
            return await self._write(lambda db: claim_in(db, req), atomic=checks, lock=fp if guard else None)
        except Exception as exc:  # any failure of the store: the write must not be sent
            raise JournalUnavailable(f"the write journal cannot be written ({_reason(exc)})") from exc

    async def finish(self, row_id: int, done: Finish) -> None:
        """Record how a claimed write ended."""
        envelope = envelope_text(done.envelope)
        params = (
            done.outcome,
            done.status,
            done.opportunity_id,
            done.code,
            done.latency_ms,
            done.requests,
            envelope,
            row_id,
        )
        await self._write(
            lambda db: db.run(
                "UPDATE writes SET outcome = ?, status = ?, opportunity_id = ?, code = ?, latency_ms = ?,"
                " requests = ?, envelope = ? WHERE id = ?",
                params,
            ),
            atomic=False,
        )

    async def settle_unknown(self, row_id: int, done: Finish) -> bool:
        """Record what an unknown write turned out to be, once it was read back; False when the row is
        no longer unknown (another replica or a repeat settled it first)."""
        envelope = envelope_text(done.envelope)
        params = (done.outcome, done.status, done.opportunity_id, done.code, done.requests, envelope)
        found = await self._write(
            lambda db: db.all(
                "UPDATE writes SET outcome = ?, status = ?, opportunity_id = ?, code = ?, requests = requests + ?,"
                " envelope = ? WHERE id = ? AND outcome = 'unknown' RETURNING id",
                (*params, row_id),
            ),
            atomic=False,
        )
        return bool(found)

    async def unknown(self, since: float, accounts: Collection[str], limit: int = 100) -> list[Row]:
        """The rows of `accounts` left unknown since `since` (epoch seconds), oldest first."""
        marks = ", ".join("?" * len(accounts)) or "NULL"
        rows = await self._read(
            lambda db: db.all(
                f"{SELECT} WHERE outcome = 'unknown' AND at >= ? AND account IN ({marks}) ORDER BY id LIMIT ?",
                (since, *accounts, limit),
            )
        )
        return [to_row(r) for r in rows]

    async def settle(self, stale: float = STALE_AFTER) -> int:
        """Mark unknown every pending row whose process is gone (on this host, or silent for `stale`
        seconds): run at start, so a crash's rows are settled before anyone asks. How many it marked."""
        stale_before = time.time() - stale

        def sweep(db: Sql) -> int:
            rows = [to_row(r) for r in db.all(f"{SELECT} WHERE outcome = 'pending'")]
            return sum(settled(db, row, stale_before).outcome == "unknown" for row in rows)

        return await self._write(sweep, atomic=True)

    async def by_key(self, tool: str, account: str, key: str) -> Row | None:
        """The write a key names, without claiming anything: a repeat is answered before any lookup."""
        found = await self._read(
            lambda db: db.one(f"{SELECT} WHERE tool = ? AND account = ? AND idem_key = ?", (tool, account, key))
        )
        return to_row(found) if found else None

    async def row(self, row_id: int) -> Row | None:
        found = await self._read(lambda db: db.one(f"{SELECT} WHERE id = ?", (row_id,)))
        return to_row(found) if found else None

    async def written_for(self, account: str, contact: str, limit: int = 20) -> list[str]:
        """The ids of deals this server wrote for `contact` on `account` (its answers name the contact),
        newest first: where a contact's deal is looked for before a CRM without a filter is paged."""
        pattern = f'%"contact":"{contact}"%'
        rows = await self._read(
            lambda db: db.all(
                "SELECT opportunity_id, envelope FROM writes WHERE account = ? AND outcome = 'done'"
                " AND envelope LIKE ? ORDER BY id DESC LIMIT ?",
                (account, pattern, limit * 2),
            )
        )
        ids = [str(i) for i, env in rows if i and json.loads(env or "{}").get("contact") == contact]
        return list(dict.fromkeys(ids))[:limit]

    async def same_recent(self, fp: str, window: float) -> Row | None:
        """The newest guarded write with this fingerprint inside the window, without claiming anything
        (what a dry run says a create would be answered with)."""
        found = await self._read(
            lambda db: db.one(
                f"{SELECT} WHERE fingerprint = ? AND guard = TRUE AND at >= ?"
                " AND outcome IN ('pending', 'done', 'unknown') ORDER BY id DESC LIMIT 1",
                (fp, time.time() - window),
            )
        )
        return to_row(found) if found else None

    async def recent(self, limit: int = 20, accounts: Collection[str] | None = None) -> list[Row]:
        """The newest rows, of `accounts` only when given: filtered before the limit, so that one
        account's burst never hides another's writes."""
        where = "" if accounts is None else f" WHERE account IN ({', '.join('?' * len(accounts)) or 'NULL'})"
        params = (*(accounts or ()), limit)
        rows = await self._read(lambda db: db.all(f"{SELECT}{where} ORDER BY id DESC LIMIT ?", params))
        return [to_row(r) for r in rows]

    async def ping(self) -> None:
        """A constant-time read, for health probes (raises if the store cannot be read)."""
        await self._read(lambda db: db.all("SELECT id FROM writes ORDER BY id DESC LIMIT 1"))

    async def health(self) -> str | None:
        """None when the journal can be read and written (one tiny write, as a write's claim needs);
        else what is wrong, in words, for /healthz."""
        try:
            await self._write(lambda db: db.run(HEARTBEAT, (time.time(),)), atomic=False)
        except Exception as exc:
            return f"cannot be written ({_reason(exc)})"
        try:
            await self.ping()
        except Exception as exc:
            return f"cannot be read ({_reason(exc)})"
        return None

    async def counts(self) -> dict[str, int]:
        found = await self._read(lambda db: db.all("SELECT outcome, COUNT(*) FROM writes GROUP BY outcome"))
        return {str(outcome): int(count) for outcome, count in found}


def _reason(exc: BaseException) -> str:
    """The kind of failure, in a few words and never a connection string: the exception's class, and
    SQLite's own short message (its messages carry no secrets)."""
    name = type(exc).__name__
    if type(exc).__module__ == "sqlite3":
        return f"{name}: {str(exc)[:80]}"
    return name
