"""The journal store itself, the same suite on both backends (SQLite and PostgreSQL): claims,
replays, the duplicate window, and one winner when two stores on one database race for a claim."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from opportunity_mcp.journal import Finish, Journal, SqliteJournal, is_postgres, open_journal, redacted

pytestmark = pytest.mark.anyio
CREATE: dict[str, Any] = {"tool": "create_opportunity", "account": "ws", "args_fp": "a"}


@pytest.fixture
def journal(journal_target: str) -> Iterator[Journal]:
    store = open_journal(journal_target)
    yield store
    store.close()


async def test_a_key_is_answered_from_its_first_write(journal: Journal) -> None:
    first = await journal.claim(**CREATE, fp="f1", key="wamid.1", guard=False, window=600)
    assert first.row_id is not None
    await journal.finish(
        first.row_id, Finish("done", status=200, opportunity_id="opp-1", envelope={"ok": True, "id": "opp-1"})
    )
    again = await journal.claim(**{**CREATE, "args_fp": "b"}, fp="f2", key="wamid.1", guard=False, window=600)
    assert (again.row_id, again.reason) == (None, "key")
    assert again.earlier is not None and again.earlier.envelope == {"ok": True, "id": "opp-1"}
    assert again.earlier.args_fp == "a" and again.earlier.outcome == "done"
    # The same key on another account or tool is another write.
    other = await journal.claim(**{**CREATE, "account": "ws-2"}, fp="f1", key="wamid.1", guard=False, window=600)
    assert other.row_id is not None


async def test_a_key_whose_write_failed_may_be_used_again(journal: Journal) -> None:
    first = await journal.claim(**CREATE, fp="f", key="k", guard=True, window=600)
    assert first.row_id is not None
    await journal.finish(first.row_id, Finish("failed", status=422))
    retry = await journal.claim(**CREATE, fp="f", key="k", guard=True, window=600)
    assert retry.row_id is not None
    assert [(r.id, r.outcome) for r in await journal.recent()] == [(retry.row_id, "pending")]


async def test_an_unknown_outcome_is_returned_not_retried(journal: Journal) -> None:
    first = await journal.claim(**CREATE, fp="f", key="k", guard=False, window=600)
    assert first.row_id is not None
    await journal.finish(first.row_id, Finish("unknown"))
    again = await journal.claim(**CREATE, fp="f", key="k", guard=False, window=600)
    assert again.row_id is None and again.earlier is not None and again.earlier.outcome == "unknown"


async def test_the_duplicate_window(journal: Journal) -> None:
    first = await journal.claim(**CREATE, fp="same", key=None, guard=True, window=600)
    assert first.row_id is not None
    inflight = await journal.claim(**CREATE, fp="same", key=None, guard=True, window=600)
    assert (inflight.row_id, inflight.reason) == (None, "inflight")
    await journal.finish(first.row_id, Finish("done", opportunity_id="opp-1"))
    repeat = await journal.claim(**CREATE, fp="same", key=None, guard=True, window=600)
    assert (repeat.row_id, repeat.reason) == (None, "duplicate")
    # Outside the window (0 s), or unguarded, it is a new write.
    assert (await journal.claim(**CREATE, fp="same", key=None, guard=True, window=-1)).row_id is not None
    assert (await journal.claim(**CREATE, fp="same", key=None, guard=False, window=600)).row_id is not None


async def test_recent_counts_ping_and_shapes(journal: Journal) -> None:
    await journal.ping()
    ids = []
    for n in range(3):
        claim = await journal.claim(**CREATE, fp=f"f{n}", key=None, guard=False, window=600)
        assert claim.row_id is not None
        ids.append(claim.row_id)
    await journal.finish(ids[0], Finish("done", status=200, code="OPP-2026-0001", latency_ms=12, requests=1))
    await journal.finish(ids[1], Finish("failed", status=422))
    recent = await journal.recent(2)
    assert [r.id for r in recent] == [ids[2], ids[1]]
    assert await journal.counts() == {"done": 1, "failed": 1, "pending": 1}
    assert await journal.learned_shape("loc") is None
    await journal.learn_shape("loc", "contact")
    await journal.learn_shape("loc", "location")
    assert await journal.learned_shape("loc") == "location"


@pytest.mark.parametrize("key", ["wamid.race", None])
def test_one_winner_when_two_stores_race(journal_target: str, key: str | None) -> None:
    """Two stores on one database (as two replicas have), 24 claims of one write at once."""
    stores = [open_journal(journal_target), open_journal(journal_target)]
    try:

        def claim(n: int) -> int | None:
            store = stores[n % 2]
            return asyncio.run(store.claim(**CREATE, fp="race", key=key, guard=key is None, window=600)).row_id

        with ThreadPoolExecutor(max_workers=12) as pool:
            won = [row for row in pool.map(claim, range(24)) if row is not None]
        assert len(won) == 1
        assert len(asyncio.run(stores[0].recent(50))) == 1
    finally:
        for store in stores:
            store.close()


def test_the_backend_is_chosen_by_the_target(journal_target: str) -> None:
    store = open_journal(journal_target)
    try:
        assert type(store).__name__ == ("PostgresJournal" if is_postgres(journal_target) else "SqliteJournal")
        # People read `where`: the path or URL they configured, never with a password in it.
        assert store.where == redacted(journal_target)
        assert store.where.rstrip("/").split("/")[-1] == journal_target.rstrip("/").split("/")[-1].split("?")[0]
    finally:
        store.close()


async def test_a_row_left_pending_by_a_dead_process_becomes_unknown(journal: Journal) -> None:
    dead = await journal.claim(**CREATE, fp="f", key="k", guard=True, window=600)
    assert dead.row_id is not None  # never finished: its process died
    fresh = await journal.claim(**CREATE, fp="f", key="k", guard=True, window=600, stale=300)
    assert fresh.row_id is None and fresh.earlier is not None and fresh.earlier.outcome == "pending"
    stale = await journal.claim(**CREATE, fp="f", key="k", guard=True, window=600, stale=-1)
    assert stale.row_id is None and stale.earlier is not None and stale.earlier.outcome == "unknown"


async def test_a_cancelled_call_still_finishes_its_row(journal: Journal) -> None:
    """What the tools do: finish under a shield, so a cancellation cannot leave a row pending."""
    import anyio

    claim = await journal.claim(**CREATE, fp="f", key=None, guard=True, window=600)
    assert claim.row_id is not None
    with anyio.CancelScope() as scope:
        scope.cancel()
        with anyio.CancelScope(shield=True):
            await journal.finish(claim.row_id, Finish("unknown"))
    assert [r.outcome for r in await journal.recent()] == ["unknown"]


def test_every_sqlite_connection_syncs_at_checkpoints_only(tmp_path: Path) -> None:
    """synchronous is a setting of each connection: one left at FULL syncs the disk on every write."""
    store = SqliteJournal(tmp_path / "journal.sqlite3")
    try:
        modes = {conn.db.execute("PRAGMA synchronous").fetchone()[0] for conn in (store._inline, store._waiting)}
    finally:
        store.close()
    assert modes == {1}  # NORMAL
