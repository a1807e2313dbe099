"""How the HTTP server holds off slow, idle and numerous connections, below the application:

- a request head must arrive whole within `head_timeout` seconds of the connection opening (or of
  the previous answer on a kept-alive connection), however slowly its bytes trickle in;
- a request body must arrive whole within `body_timeout` seconds of its first read (408 otherwise);
- at most `max_connections` are open at once, kept below the descriptor limit; one more is closed at
  once, unread, so that the server never runs out of descriptors for its own answers and files;
- descriptor exhaustion, should it happen anyway, is one log line per interval, not a traceback per
  refused accept (asyncio logs one for every retry);
- the MCP endpoint takes POST only: a stateless server has no stream to offer on GET, so GET (the
  URL a person pastes in a browser) is answered 405 at once instead of an idle stream held open.

uvicorn has none of these as settings (its keep-alive timer is cancelled by any byte, and its
concurrency limit only applies once a head has arrived), so the first two live in a subclass of its
h11 protocol, passed as `Config(http=...)`.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

import opportunity_mcp.defaults as D

RESERVED_DESCRIPTORS = 64  # for the journal, the CRM pool, logs: never taken by client connections


@dataclass(frozen=True, slots=True)
class Limits:
    head_timeout: float = D.HEAD_TIMEOUT
    body_timeout: float = D.BODY_TIMEOUT
    keep_alive: float = D.KEEP_ALIVE
    max_connections: int = D.MAX_CONNECTIONS


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered to fit the process's descriptor limit (raised to its hard limit first)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_DESCRIPTORS))


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a connection cap (`limits`)."""

    limits = Limits()
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        if len(self.connections) > self.limits.max_connections:
            transport.close()  # unread: a full server answers nothing rather than fall over
            return
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_head()  # the next request's head on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        # h11 is IDLE until a whole head is parsed: the deadline runs until then, and bytes trickling
        # in do not extend it. The same deadline runs while a client still sends a body the server
        # already answered without reading (a 405, 401, 413): that body may never end.
        waiting = self.conn.their_state is h11.IDLE or (
            self.conn.our_state is h11.DONE and self.conn.their_state is h11.SEND_BODY
        )
        if waiting and not self.transport.is_closing():
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.limits.head_timeout, self.transport.close)
        else:
            self._stop_head()

    def _stop_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None


def guarded_protocol(limits: Limits) -> type[H11Protocol]:
    """The guarded protocol with these limits, for `uvicorn.Config(http=...)`."""
    return type("Guarded", (GuardedH11,), {"limits": limits})


class BodyTimeout:
    """Ends a request whose body stalls: 408 (if no answer started) once `seconds` have passed
    since the body's first read. The app is cancelled, so nothing half-read reaches a tool."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: float | None = None
        done = timed_out = started = False

        async def guarded_receive() -> Message:
            nonlocal deadline, done, timed_out
            if done:
                return await receive()
            deadline = deadline or anyio.current_time() + self.seconds
            with anyio.CancelScope(deadline=deadline) as wait:
                message = await receive()
            if wait.cancelled_caught:
                timed_out = True
                scope_of_app.cancel()
                await anyio.lowlevel.checkpoint()
            done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        with anyio.CancelScope() as scope_of_app:
            await self.app(scope, guarded_receive, watched_send)
        if timed_out and not started:
            headers = [(b"content-length", b"0"), (b"connection", b"close")]
            await send({"type": "http.response.start", "status": 408, "headers": headers})
            await send({"type": "http.response.body", "body": b""})


class PostOnly:
    """The MCP endpoint answers GET and DELETE with 405 (Allow: POST): a stateless server keeps no
    stream or session for them, and an open stream that never speaks would hold a connection."""

    def __init__(self, app: ASGIApp, path: str = "/mcp") -> None:
        self.app, self.path = app, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] in ("GET", "DELETE"):
            headers = [(b"allow", b"POST"), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


class AcceptExhaustion(logging.Filter):
    """asyncio logs a traceback for every accept() refused for want of descriptors, thousands a
    second: let one short line through per `every` seconds, saying how many were held back."""

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every, self.last, self.held = every, float("-inf"), 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith("socket.accept() out of system resource")):
            return True
        now = time.monotonic()
        if now - self.last < self.every:
            self.held += 1
            return False
        error: Any = record.exc_info[1] if record.exc_info else None
        reason = getattr(error, "strerror", None) or "out of descriptors"
        record.msg = f"accepting connections fails: {reason} ({self.held} such lines held back)"
        record.args, record.exc_info, record.exc_text = (), None, None
        self.last, self.held = now, 0
        return True


def quiet_exhaustion() -> None:
    """Install the filter on asyncio's logger (once)."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, AcceptExhaustion) for f in logger.filters):
        logger.addFilter(AcceptExhaustion())
