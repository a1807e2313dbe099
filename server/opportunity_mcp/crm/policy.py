"""When to send a request again, how long to wait, and how long a whole tool call may take.

Only what is safe is retried: a connection that never opened (nothing was sent), a 429 (the CRM
did not process it), and — for idempotent writes only (an update, an upsert with an id) — a 502,
503, 504, timeout or dropped connection. A create is never sent again once it may have reached the
CRM. Waits follow `Retry-After` or LeadConnector's rate-limit headers when given, else exponential
backoff with full jitter, and never run past the call's time budget.
"""

from __future__ import annotations

import bisect
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import anyio
import httpx2

import opportunity_mcp.defaults as D
from opportunity_mcp.crm.errors import (
    CrmConnectError,
    CrmError,
    CrmNoAnswer,
    CrmNotSent,
    CrmRateLimited,
    CrmTimedOut,
    CrmUnavailable,
)
from opportunity_mcp.crm.http import send

T = TypeVar("T")
log = logging.getLogger(__name__)
WaitNotice = Callable[[float, str], Awaitable[None]]
_RETRYABLE_5XX = frozenset({502, 503, 504})


async def _no_notice(delay: float, reason: str) -> None:
    return None


@dataclass
class CallPolicy:
    """One tool call's budget and bookkeeping: its deadline, whom to tell about waits, and how many
    requests it sent."""

    budget: float = D.CALL_BUDGET
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
            if attempt == 1:  # nothing left this process: the outcome is known
                raise CrmNotSent("the call's time budget ran out before the request could be sent")
            raise CrmTimedOut("the call's time budget ran out before the CRM answered")
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


class RateWindow(Protocol):
    """Where a sliding window's requests are counted: in this process (`LocalWindow`), or in a
    database every replica shares (the PostgreSQL journal's)."""

    async def take(self, key: str, limit: int, window: float) -> tuple[float, int, float]:
        """Count one request now if the last `window` seconds hold fewer than `limit`: (0, how many
        the window holds with it, its time stamp). Else (seconds until there is room, how many it
        holds, 0)."""
        ...

    async def touch(self, key: str, stamp: float) -> None:
        """Move the request stamped `stamp` to now: it reached the CRM later than it was counted."""
        ...

    async def hold(self, key: str, count: int, window: float, seconds: float) -> None:
        """The CRM counts more than the window does: make it hold at least `count` requests for the
        next `seconds`."""
        ...


class LocalWindow:
    """A window per key in this process: enough with one replica (or a SQLite journal)."""

    def __init__(self) -> None:
        self._hits: dict[str, list[float]] = {}

    def _live(self, key: str, window: float, now: float) -> list[float]:
        hits = self._hits.setdefault(key, [])
        del hits[: bisect.bisect_right(hits, now - window)]
        return hits

    async def take(self, key: str, limit: int, window: float) -> tuple[float, int, float]:
        now = time.monotonic()
        hits = self._live(key, window, now)  # no await from here to the insert: one event loop
        if len(hits) < limit:
            bisect.insort(hits, now)
            return 0.0, len(hits), now
        return hits[0] + window - now, len(hits), 0.0

    async def touch(self, key: str, stamp: float) -> None:
        hits = self._hits.get(key, [])
        at = bisect.bisect_left(hits, stamp)
        if at < len(hits) and hits[at] == stamp:
            del hits[at]
            bisect.insort(hits, time.monotonic())

    async def hold(self, key: str, count: int, window: float, seconds: float) -> None:
        now = time.monotonic()
        hits = self._live(key, window, now)
        if count > len(hits):
            # Stand-in requests that leave the window `seconds` from now.
            for _ in range(count - len(hits)):
                bisect.insort(hits, now + seconds - window)


@dataclass(frozen=True, slots=True)
class Ticket:
    """One counted request: which window counted it, with what stamp, and when (this process's clock)."""

    window: RateWindow
    stamp: float
    granted: float


class RateLimiter:
    """LeadConnector's burst limit (requests per location per window) kept on our side: a burst of
    calls waits for room instead of being refused upstream. The window is a little longer than the
    CRM's (`MARGIN`), so that network jitter cannot put one request too many in the CRM's window; the
    CRM's own `X-RateLimit-Remaining` on each answer tightens it when the CRM counts more (another
    app on the same location)."""

    MARGIN = 0.5

    def __init__(
        self, limit: int = D.RATE_LIMIT, window: float = D.RATE_WINDOW, store: RateWindow | None = None
    ) -> None:
        self.limit = limit
        self.window = window
        self.store: RateWindow = store or LocalWindow()
        self._fallback = LocalWindow()
        self._believed: dict[str, int] = {}  # requests in the window at our last grant, per key

    async def _take(self, key: str) -> tuple[float, int, float, RateWindow]:
        try:
            return (*await self.store.take(key, self.limit, self.window + self.MARGIN), self.store)
        except Exception as exc:  # the shared window's database is away: count here meanwhile
            log.warning("shared rate window unavailable (%s); counting in this process", type(exc).__name__)
            return (*await self._fallback.take(key, self.limit, self.window + self.MARGIN), self._fallback)

    async def acquire(self, key: str, policy: CallPolicy) -> Ticket:
        """Wait for room for one request to `key`, within the call's budget; the ticket goes back to
        `done` once the request is answered."""
        while True:
            wait, count, stamp, window = await self._take(key)
            if wait <= 0:
                self._believed[key] = count
                return Ticket(window, stamp, time.monotonic())
            if wait >= policy.remaining():
                raise CrmRateLimited(
                    f"the limit of {self.limit} requests per {self.window:g} s for this account is reached",
                    status=None,
                    retry_after=wait,
                )
            await policy.on_wait(wait, "waiting for the request-rate limit")
            await anyio.sleep(wait)

    async def done(self, key: str, ticket: Ticket, headers: Mapping[str, str]) -> None:
        """After the answer. A request answered long after it was counted (a busy process, a slow
        connection) may have reached the CRM late: it is counted again as of now, so that it leaves
        our window no earlier than the CRM's. Then the CRM's own count, from its headers."""
        if time.monotonic() - ticket.granted > self.MARGIN / 2:
            try:
                await ticket.window.touch(key, ticket.stamp)
            except Exception as exc:  # best effort, as below
                log.warning("could not move a request in the shared rate window (%s)", type(exc).__name__)
        if headers:
            await self.observe(key, headers)

    async def observe(self, key: str, headers: Mapping[str, str]) -> None:
        """Read the CRM's `X-RateLimit-Remaining` / `-Interval-Milliseconds` off an answer."""
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            seconds = float(headers.get("x-ratelimit-interval-milliseconds", self.window * 1000)) / 1000
        except (KeyError, ValueError):
            return
        used = self.limit - max(0, remaining)
        if used > self._believed.get(key, 0) and math.isfinite(seconds):
            self._believed[key] = used
            lasting = min(max(seconds, 0.0), self.window) + self.MARGIN
            try:
                await self.store.hold(key, used, self.window + self.MARGIN, lasting)
            except Exception as exc:  # best effort: the answer in hand matters more than the hint
                log.warning("could not tighten the shared rate window (%s)", type(exc).__name__)
