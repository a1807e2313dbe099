"""The benchmark harness still runs end to end (tiny numbers; the figures come from `make bench`)."""

from __future__ import annotations

import anyio
import pytest

from bench.run import main, markdown, targets
from opportunity_mcp.tools import TOOLS

pytestmark = pytest.mark.slow


def test_the_harness_measures_both_servers_and_reports_every_target() -> None:
    result = anyio.run(main, 3, 1, 0.3)
    assert set(result["per_call"]["per_tool"]) == {spec.name for spec in TOOLS if not spec.read_only}
    assert result["cold_start"]["ours"]["n"] == result["cold_start"]["floor"]["n"] == 1
    assert result["per_call"]["tokens"]["tools_list"]["ours"] > result["per_call"]["tokens"]["tools_list"]["floor"]
    assert set(result["http"]) == {"1", "8", "32"}
    assert len(targets(result)) == 18
    assert result["per_call"]["requests"] == {
        "ids": 1,
        "names_first": 4,
        "names_warm": 2,
        "update_by_contact_plazbot": 3,  # the contact, the deal the journal knows read by id, the update
        "upsert_by_phone_leadconnector": 3,  # the contact, the search, the upsert
        "upsert_by_id_stage_name": 2,  # the deal's pipeline (read once), the upsert
    }
    table = markdown(result)
    assert "| cold start ≤ 1.10× floor |" in table and "| HTTP, 32 clients" in table
