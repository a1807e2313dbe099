"""Where the OAuth authorization server keeps its state, in the journal's database so that every
replica answers every step and a restart loses no grant: registered clients, and grants (codes,
access and refresh tokens) known only by their SHA-256 digests, each with its expiry; expired grants
are swept as new ones are written. Tries of a wrong connector code are counted here too, per client
and address, so the limit holds for the fleet."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Kind = Literal["code", "access", "refresh"]
CLIENT_DAYS = 30


class OAuthStore(ABC):
    """The OAuth tables, over the store's own `_read` and `_write`."""

    @abstractmethod
    async def _write(self, fn: Callable[[Any], T], *, atomic: bool, lock: str | None = None) -> T: ...

    @abstractmethod
    async def _read(self, fn: Callable[[Any], T]) -> T: ...

    async def save_client(self, client_id: str, info: dict[str, Any]) -> None:
        """Register a client; clients registered over `CLIENT_DAYS` ago that hold no grant are swept
        (registration is open: what nobody uses must not pile up)."""
        text, now = json.dumps(info, separators=(",", ":")), time.time()

        def save(db: Any) -> None:
            db.run(
                "DELETE FROM oauth_clients WHERE at < ? AND client_id NOT IN (SELECT client_id FROM oauth_grants)",
                (now - CLIENT_DAYS * 86400,),
            )
            db.run("DELETE FROM oauth_tries WHERE since < ?", (now - 86400,))
            db.run(
                "INSERT INTO oauth_clients (client_id, info, at) VALUES (?, ?, ?)"
                " ON CONFLICT (client_id) DO UPDATE SET info = excluded.info, at = excluded.at",
                (client_id, text, now),
            )

        await self._write(save, atomic=True)

    async def oauth_client(self, client_id: str) -> dict[str, Any] | None:
        found = await self._read(lambda db: db.one("SELECT info FROM oauth_clients WHERE client_id = ?", (client_id,)))
        return json.loads(found[0]) if found else None

    async def put_grant(self, digest: str, kind: Kind, client_id: str, data: dict[str, Any], expires: float) -> None:
        text, now = json.dumps(data, separators=(",", ":")), time.time()

        def put(db: Any) -> None:
            db.run("DELETE FROM oauth_grants WHERE expires < ?", (now,))
            db.run(
                "INSERT INTO oauth_grants (digest, kind, client_id, data, expires) VALUES (?, ?, ?, ?, ?)",
                (digest, kind, client_id, text, expires),
            )

        await self._write(put, atomic=True)

    async def grant(self, digest: str, kind: Kind) -> dict[str, Any] | None:
        """A live grant's data (None when unknown, of another kind, or expired)."""
        found = await self._read(
            lambda db: db.one(
                "SELECT data FROM oauth_grants WHERE digest = ? AND kind = ? AND expires >= ?",
                (digest, kind, time.time()),
            )
        )
        return json.loads(found[0]) if found else None

    async def take_grant(self, digest: str, kind: Kind) -> dict[str, Any] | None:
        """A live grant, removed in the same statement: a code or a refresh token is used once,
        whichever replica two racing requests reach."""
        found = await self._write(
            lambda db: db.all(
                "DELETE FROM oauth_grants WHERE digest = ? AND kind = ? AND expires >= ? RETURNING data",
                (digest, kind, time.time()),
            ),
            atomic=False,
        )
        return json.loads(found[0][0]) if found else None

    async def drop_grants(self, digests: Iterable[str]) -> None:
        gone = list(digests)

        def drop(db: Any) -> None:
            for digest in gone:
                db.run("DELETE FROM oauth_grants WHERE digest = ?", (digest,))

        await self._write(drop, atomic=True)

    async def count_try(self, key: str, window: float, *, step: int = 1) -> int:
        """Count a try under `key` (`step` -1 takes one back) and say how many there are in the window
        (the first of a new window starts it again), in one statement whichever replica runs it."""
        now = time.time()

        def count(db: Any) -> int:
            db.run(
                "INSERT INTO oauth_tries (key, count, since) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " count = CASE WHEN oauth_tries.since < ? THEN excluded.count ELSE oauth_tries.count + ? END,"
                " since = CASE WHEN oauth_tries.since < ? THEN excluded.since ELSE oauth_tries.since END",
                (key, max(step, 0), now, now - window, step, now - window),
            )
            found = db.one("SELECT count FROM oauth_tries WHERE key = ?", (key,))
            return int(found[0]) if found else 0

        return await self._write(count, atomic=True)
