"""Who claimed a journal row, and whether that process is surely gone; and the rate limiter when its
shared window is away. Fast checks of the rules the crash and chaos runs rely on."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from opportunity_mcp.crm.errors import CrmRateLimited
from opportunity_mcp.crm.policy import CallPolicy, LocalWindow, RateLimiter
from opportunity_mcp.journal.base import owner, owner_dead

pytestmark = pytest.mark.anyio


def test_a_claimant_is_dead_only_when_this_host_can_tell() -> None:
    host, namespace, pid, started = owner().split("/")
    assert pid == str(os.getpid()) and started != "-"
    assert not owner_dead(owner())  # this process runs
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = int(child.stdout)
    assert owner_dead(f"{host}/{namespace}/{gone}/{started}")  # exited (or its pid is someone else's)
    assert not owner_dead(f"{host}/{namespace}/{os.getpid()}/{started}")
    assert owner_dead(f"{host}/{namespace}/{os.getpid()}/{int(started) - 1}")  # an earlier holder of this pid
    assert not owner_dead(f"another-host/{namespace}/{gone}/{started}")  # a replica elsewhere: by age only
    assert not owner_dead(f"{host}/1/{gone}/{started}")  # another pid namespace (a container)
    assert not owner_dead(f"{host}/{gone}/{started}")  # a row from before namespaces were recorded
    assert not owner_dead(None)


class _Away:
    """A shared window whose database is gone."""

    async def take(self, key: str, limit: int, window: float) -> tuple[float, int, float]:
        raise ConnectionError("database away")

    async def touch(self, key: str, stamp: float) -> None:
        raise ConnectionError("database away")

    async def hold(self, key: str, count: int, window: float, seconds: float) -> None:
        raise ConnectionError("database away")


async def test_the_limiter_counts_locally_while_its_shared_window_is_away() -> None:
    limiter = RateLimiter(limit=2, window=10.0, store=_Away())
    policy = CallPolicy(budget=0.5)
    first = await limiter.acquire("loc", policy)
    await limiter.acquire("loc", policy)
    with pytest.raises(CrmRateLimited, match="limit of 2 requests per 10 s"):
        await limiter.acquire("loc", policy)  # the third waits past the budget: refused, not sent
    slow = dataclasses.replace(first, granted=first.granted - 5)  # answered long after it was counted
    await limiter.done("loc", slow, {"x-ratelimit-remaining": "0", "x-ratelimit-interval-milliseconds": "10000"})


async def test_a_request_answered_late_leaves_the_window_late() -> None:
    # It may have reached the CRM just before its answer, so the CRM counts it until then + window.
    limiter = RateLimiter(limit=1, window=1.0)
    ticket = await limiter.acquire("loc", CallPolicy(budget=5))
    late = dataclasses.replace(ticket, granted=ticket.granted - 0.3)  # answered 0.3 s after it was granted
    await limiter.done("loc", late, {})
    with pytest.raises(CrmRateLimited) as refused:
        await limiter.acquire("loc", CallPolicy(budget=0.1))
    assert refused.value.retry_after is not None
    assert refused.value.retry_after > 1.0 + limiter.MARGIN - 0.15  # counted from the answer, not the grant


async def test_the_crms_count_holds_the_local_window() -> None:
    window = LocalWindow()
    limiter = RateLimiter(limit=5, window=10.0, store=window)
    await limiter.acquire("loc", CallPolicy(budget=1))
    await limiter.observe("loc", {"x-ratelimit-remaining": "1", "x-ratelimit-interval-milliseconds": "10000"})
    await limiter.acquire("loc", CallPolicy(budget=1))  # the CRM's one remaining request
    with pytest.raises(CrmRateLimited, match="limit of 5"):
        await limiter.acquire("loc", CallPolicy(budget=1))  # the CRM has counted the other four
