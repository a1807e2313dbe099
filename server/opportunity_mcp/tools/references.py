"""Reference lists (stages, pipelines, sellers, lost reasons) kept per account for a few minutes, so a
name costs no request while the list is fresh. Contacts are never kept: they are looked up each time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import opportunity_mcp.defaults as D

Fetch = Callable[[], Awaitable[Any]]


class ReferenceCache:
    def __init__(self, ttl: float = D.LOOKUP_TTL) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}

    async def get(self, account: str, kind: str, fetch: Fetch, *, refresh: bool = False) -> tuple[Any, bool]:
        """The list, and whether it was just fetched (a miss in a fetched list is final)."""
        key = (account, kind)
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and not refresh and cached[0] > now:
            return cached[1], False
        value = await fetch()
        self._entries[key] = (time.monotonic() + self.ttl, value)
        return value, True
