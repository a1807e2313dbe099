"""The scale-out scenario of `make load`, as a test: two server processes share one PostgreSQL journal
and one standalone sandbox CRM; 32 clients send 2,000 creates with overlapping idempotency keys. It
asserts the counts (no duplicate deal, no lost or unfinished journal row, every call answered), never
the speed: `make load` reports that."""

from __future__ import annotations

import itertools

import pytest

from bench.load import run_load, schedule

pytestmark = pytest.mark.slow


def test_schedule_sends_every_key_twice_half_of_them_at_once() -> None:
    order = schedule(2000)
    assert len(order) == 2000 and len(set(order)) == 1000
    assert all(order.count(k) == 2 for k in set(order[:50]))
    adjacent = sum(1 for a, b in itertools.pairwise(order) if a == b)
    assert adjacent == 500


def test_two_replicas_one_postgres_journal_no_duplicates_no_lost_rows(postgres: str) -> None:
    result = run_load(calls=2000, clients=32, database=postgres)
    assert result.calls == 2000 and result.keys == 1000
    assert result.duplicate_opportunities == 0
    assert result.sandbox_opportunities == 1000
    assert result.lost_rows == 0
    assert result.journal_rows == {"done": 1000}
    # Every call got a successful answer: the first of each key created it, the other was answered
    # from the journal (waiting for it when both arrived together).
    assert result.answers == {"created": 1000, "already_done": 1000}
    assert len(result.latencies_ms) == 2000
