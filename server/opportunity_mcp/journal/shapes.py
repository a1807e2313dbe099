"""Where the upsert shape each LeadConnector location takes is remembered, shared by replicas."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ShapeStore(ABC):
    """The shapes table, over the store's own `_read` and `_write`."""

    @abstractmethod
    async def _write(self, fn: Callable[[Any], T], *, atomic: bool, lock: str | None = None) -> T: ...

    @abstractmethod
    async def _read(self, fn: Callable[[Any], T]) -> T: ...

    async def learned_shape(self, location: str) -> str | None:
        found = await self._read(lambda db: db.one("SELECT shape FROM upsert_shapes WHERE location = ?", (location,)))
        return str(found[0]) if found else None

    async def learn_shape(self, location: str, shape: str) -> None:
        await self._write(
            lambda db: db.run(
                "INSERT INTO upsert_shapes (location, shape, at) VALUES (?, ?, ?)"
                " ON CONFLICT (location) DO UPDATE SET shape = excluded.shape, at = excluded.at",
                (location, shape, time.time()),
            ),
            atomic=False,
        )
