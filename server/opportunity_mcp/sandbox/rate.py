"""LeadConnector's burst limit as the sandbox plays it: at most `limit` requests in any `window`
seconds, the `X-RateLimit-*` headers on every answer, a 429 beyond. It also keeps every arrival, so a
test can ask the busiest window the CRM saw (`peak`)."""

from __future__ import annotations

import bisect
import threading
import time


class BurstLimit:
    def __init__(self, limit: int = 100, window: float = 10.0) -> None:
        self.limit = limit  # 0: no limit (the benchmarks' unthrottled baseline)
        self.window = window
        self._lock = threading.Lock()
        self._arrivals: list[float] = []  # monotonic times, in order
        self.refused = 0

    def reset(self) -> None:
        with self._lock:
            self._arrivals.clear()
            self.refused = 0

    def arrive(self) -> tuple[bool, dict[str, str]]:
        """Count one request now: whether it is over the limit, and the headers its answer carries."""
        now = time.monotonic()
        with self._lock:
            self._arrivals.append(now)
            if not self.limit:
                return False, {}
            start = bisect.bisect_right(self._arrivals, now - self.window)
            used = len(self._arrivals) - start
            over = used > self.limit
            if over:
                self.refused += 1
                self._arrivals.pop()  # a refused request does not use the budget
                used -= 1
        return over, {
            "X-RateLimit-Max": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - used)),
            "X-RateLimit-Interval-Milliseconds": str(round(self.window * 1000)),
        }

    def peak(self) -> int:
        """The most requests accepted in any window of `window` seconds."""
        with self._lock:
            times = list(self._arrivals)
        best, start = 0, 0
        for end, at in enumerate(times):
            while times[start] <= at - self.window:
                start += 1
            best = max(best, end - start + 1)
        return best
