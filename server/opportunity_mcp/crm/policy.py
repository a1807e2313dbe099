"""When to send a request again, how long to wait, and how long a whole tool call may take.

Only what is safe is retried: a connection that never opened (nothing was sent), a 429 (the CRM
did not process it), and — for idempotent writes only (an update, an upsert with an id) — a 502,
503, 504, timeout or dropped connection. A create is never sent again once it may have reached the
CRM. Waits follow `Retry-After` or LeadConnector's rate-limit headers when given, else exponential
backoff with full jitter, and never run past the call's time budget.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import httpx2

from opportunity_mcp.crm.errors import CrmConnectError, CrmError, CrmNoAnswer, CrmRateLimited, CrmUnavailable
from opportunity_mcp.crm.http import send

T = TypeVar("T")
WaitNotice = Callable[[float, str], Awaitable[None]]
_RETRYABLE_5XX = frozenset({502, 503, 504})


async def _no_notice(delay: float, reason: str) -> None:
    return None


@dataclass
class CallPolicy:
    """One tool call's budget and bookkeeping: its deadline, whom to tell about waits, and how many
    requests it sent."""

    budget: float = 20.0
    max_attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    on_wait: WaitNotice = _no_notice
    requests: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        return self.started + self.budget

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))  # noqa: S311


def retryable(err: CrmError, *, idempotent: bool) -> bool:
    if isinstance(err, CrmConnectError | CrmRateLimited):
        return True
    if idempotent and isinstance(err, CrmUnavailable):
        return err.status in _RETRYABLE_5XX
    return idempotent and isinstance(err, CrmNoAnswer)


async def with_retries(policy: CallPolicy, call: Callable[[float], Awaitable[T]], *, idempotent: bool) -> T:
    """Run `call(time_left)` until it succeeds, fails for good, or the budget is spent."""
    attempt = 0
    while True:
        attempt += 1
        remaining = policy.remaining()
        if remaining <= 0.05:
            raise CrmNoAnswer("the call's time budget ran out before the CRM answered")
        policy.requests += 1
        try:
            return await call(remaining)
        except CrmError as err:
            if isinstance(err, CrmConnectError):
                policy.requests -= 1  # never reached the CRM
            if attempt >= policy.max_attempts or not retryable(err, idempotent=idempotent):
                raise
            retry_after = err.retry_after if isinstance(err, CrmRateLimited) else None
            delay = retry_after if retry_after is not None else policy.backoff(attempt)
            if delay >= policy.remaining():
                raise
            await policy.on_wait(delay, f"retrying after: {err.message}")
            await anyio.sleep(delay)


async def request(
    policy: CallPolicy,
    http: httpx2.AsyncClient,
    crm: str,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str],
    idempotent: bool,
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> Any:
    """One CRM request under the call's policy: retried where safe, within the time budget."""
    return await with_retries(
        policy,
        lambda time_left: send(http, crm, method, path, headers=headers, params=params, body=body, time_left=time_left),
        idempotent=idempotent,
    )


class RateLimiter:
    """A client-side sliding window per key (a LeadConnector location): a burst of calls waits for
    room instead of being refused upstream."""

    def __init__(self, limit: int = 100, window: float = 10.0) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}

    async def acquire(self, key: str, policy: CallPolicy) -> None:
        hits = self._hits.setdefault(key, deque())
        while True:
            now = time.monotonic()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) < self.limit:
                hits.append(now)  # no await between the check and the append: one event loop
                return
            wait = hits[0] + self.window - now
            if wait >= policy.remaining():
                raise CrmRateLimited(
                    f"the local limit of {self.limit} requests per {self.window:g} s for this account is reached",
                    status=None,
                    retry_after=wait,
                )
            await policy.on_wait(wait, "waiting for the request-rate limit")
            await anyio.sleep(wait)
