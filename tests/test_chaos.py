"""The short version of `make chaos`: two replicas on one PostgreSQL journal, the sandbox CRM
injecting faults, clients that re-send like agents, one replica killed with SIGKILL and started again,
PostgreSQL restarted. It asserts the counts, never the speed."""

from __future__ import annotations

import pytest

from bench.chaos import run_chaos
from tests.postgres import restartable

pytestmark = pytest.mark.slow


def test_a_fleet_that_fails_on_purpose_loses_nothing_and_doubles_nothing(postgres: str) -> None:
    if not restartable(postgres):
        pytest.skip("OPPORTUNITY_MCP_TEST_POSTGRES names a server these tests do not run, so cannot restart")
    result = run_chaos(calls=200, clients=12, database=postgres)
    assert len(result["events"]) == 4, result["events"]  # the SIGKILL, the restart, PostgreSQL down and up
    assert result["resends"] > 0 and sum(result["read_back"].values()) > 0  # the faults did bite
    # A lost answer is read back: unknown only when the CRM stayed unreadable (issue 19: at most 1 %).
    assert result["final_answers"].get("unknown", 0) <= 2, result["errors_met"]
    assert result["duplicate_deals"] == 0
    assert result["created_but_missing"] == 0
    assert result["deals_no_call_knows"] == 0
    assert result["pending_after"] == 0
    assert result["secrets_in_logs"] == 0 and result["log_bytes"] > 0
    # Every conversation ended with an answer it can act on: done, or an outcome to check.
    assert set(result["final_answers"]) <= {"created", "already_done", "unknown"}, result["errors_met"]
    assert sum(result["final_answers"].values()) == 200
