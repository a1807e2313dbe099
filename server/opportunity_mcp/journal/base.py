"""What every journal store shares: its rows, its answer to a claim, and the interface the tools use.

A write is claimed before its HTTP call and finished after it. Uniqueness lives in the database's
constraints (an idempotency key is unique per tool and account; only one identical guarded create may
be pending), so two processes sharing one store cannot both win a claim.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

Outcome = Literal["pending", "done", "failed", "unknown"]
# Seconds after which a row still pending is taken as the write of a process that died: "unknown".
STALE_AFTER = 300.0


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "opportunity-mcp" / "journal.sqlite3"


# Built once: json.dumps with options makes a new encoder on every call (a hot-path cost).
_FP_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def fingerprint(tool: str, account: str, fields: Mapping[str, Any]) -> str:
    """A stable hash of what makes two writes 'the same': text compared trimmed and case-folded."""
    norm = {k: (" ".join(v.split()).casefold() if isinstance(v, str) else v) for k, v in fields.items()}
    return hashlib.sha256(_FP_JSON.encode([tool, account, norm]).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    at: float
    tool: str
    account: str
    idem_key: str | None
    outcome: Outcome
    status: int | None
    opportunity_id: str | None
    code: str | None
    latency_ms: int | None
    requests: int
    envelope: dict[str, Any] | None
    args_fp: str | None
    owner: str | None = None  # the process that claimed it: host/pid/start
    intent: dict[str, Any] | None = None  # what was sent, as far as reading it back needs (`read_back`)


class SharedWindow(Protocol):
    """A sliding request window kept in the store, so that replicas share one rate limit (the CRM
    layer's `RateWindow`, as the journal provides it)."""

    async def take(self, key: str, limit: int, window: float) -> tuple[float, int, float]: ...

    async def touch(self, key: str, stamp: float) -> None: ...

    async def hold(self, key: str, count: int, window: float, seconds: float) -> None: ...


class JournalUnavailable(Exception):
    """The journal could not record a write (its database unreachable, read-only or full): the write
    is not sent, since one that cannot be recorded could be doubled by a retry."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The journal's answer before a write: go ahead (`row_id`), or here is what happened before."""

    row_id: int | None
    earlier: Row | None = None
    reason: Literal["key", "duplicate", "inflight"] | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """How a claimed write ended, as its row records it."""

    outcome: Outcome
    status: int | None = None
    opportunity_id: str | None = None
    code: str | None = None
    latency_ms: int | None = None
    requests: int = 0
    envelope: dict[str, Any] | None = None


def to_row(r: tuple[Any, ...] | Any) -> Row:
    """A row as `sql` selects it."""
    return Row(
        id=r[0],
        at=r[1],
        tool=r[2],
        account=r[3],
        idem_key=r[4],
        outcome=r[5],
        status=r[6],
        opportunity_id=r[7],
        code=r[8],
        latency_ms=r[9],
        requests=r[10],
        envelope=json.loads(r[11]) if r[11] else None,
        args_fp=r[12],
        owner=r[13] if len(r) > 13 else None,
        intent=json.loads(r[14]) if len(r) > 14 and r[14] else None,
    )


def envelope_text(envelope: dict[str, Any] | None) -> str | None:
    return _COMPACT_JSON.encode(envelope) if envelope is not None else None


def journal_password(target: str) -> str | None:
    """The password a postgresql:// URL carries, in its user part or as ?password=."""
    try:
        parts = urlsplit(target)
        found = parts.password or dict(parse_qsl(parts.query)).get("password")
    except ValueError:
        return None
    return found or None


def redacted(target: str) -> str:
    """A journal URL without its password, for logs and the startup line."""
    if "://" not in target:
        return target
    try:
        parts = urlsplit(target)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
        query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)])
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return target.split("://", 1)[0] + "://[a URL that does not parse]"


_GONE = "gone"


def _start_time(pid: int) -> str | None:
    """When process `pid` started, in clock ticks since boot (Linux), to tell it from a later
    process that got the same pid; `_GONE` when there is no such process; None when it cannot be
    told (no /proc, or /proc hides other users' processes)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except FileNotFoundError:
        return _GONE
    except (OSError, IndexError):
        return None


def _pid_namespace() -> str:
    """Which pid namespace this process sees (containers on one host each have their own)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


_OWNER: dict[int, str] = {}


def owner() -> str:
    """This process, as a journal row records its claimant: host/pid-namespace/pid/start."""
    pid = os.getpid()
    if pid not in _OWNER:
        _OWNER[pid] = f"{socket.gethostname()}/{_pid_namespace()}/{pid}/{_start_time(pid) or '-'}"
    return _OWNER[pid]


def owner_dead(who: str | None) -> bool:
    """Whether the claimant of a row surely no longer runs: a process this one can see (same host,
    same pid namespace) whose pid is gone or now belongs to a later process. Anything that cannot be
    told (a replica elsewhere, an unreadable /proc) counts as alive: its rows are settled by age."""
    if not who or who.count("/") != 3:
        return False
    host, namespace, pid, started = who.split("/")
    if host != socket.gethostname() or namespace in ("-", "") or namespace != _pid_namespace():
        return False
    if not pid.isdigit() or started == "-":
        return False
    now = _start_time(int(pid))
    return now is not None and now != started
