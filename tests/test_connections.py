"""Hostile connections against a real server process: a half-sent head, a stalled body, more idle
connections than descriptors, and GET on the MCP endpoint. Nothing may stall the server, and its
log must stay a few lines long."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from opportunity_mcp.connections import AcceptExhaustion
from tests.conftest import COMMAND


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _server(env: dict[str, str], descriptors: int | None = None) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = _free_port()

    def limit() -> None:
        if descriptors is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))

    args = [COMMAND, "--sandbox", "--no-auth", "--transport", "http", "--port", str(port)]
    with subprocess.Popen(
        args,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    ) as proc:
        assert proc.stderr is not None
        banner, deadline = "", time.monotonic() + 30
        while "listening on" not in banner and time.monotonic() < deadline and proc.poll() is None:
            banner += proc.stderr.readline()
        assert "listening on" in banner, banner
        try:
            yield port, proc
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` (recv gives b"" or a reset) before `seconds` pass."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
        return sock.recv(4096)


@pytest.mark.slow
def test_slow_heads_and_stalled_bodies_are_cut_and_get_on_mcp_answers_at_once() -> None:
    env = {"OPPORTUNITY_MCP_HEAD_TIMEOUT": "1", "OPPORTUNITY_MCP_BODY_TIMEOUT": "1"}
    with _server(env) as (port, _):
        silent = socket.create_connection(("127.0.0.1", port))
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line: the head never ends
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{"
        )
        # Each is closed by the server long before the test's own patience runs out.
        assert _closed_within(silent, 15)
        assert _closed_within(half, 15)
        stalled.settimeout(15)
        assert stalled.recv(4096).startswith(b"HTTP/1.1 408")
        for sock in (silent, half, stalled):
            sock.close()
        # GET on the endpoint the banner prints: an answer, not a stream held open.
        assert _get(port, "/mcp").startswith(b"HTTP/1.1 405")
        # A body the server answered without reading, sent on and on: cut at the same deadline.
        trickle = socket.create_connection(("127.0.0.1", port))
        trickle.sendall(b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999999\r\n\r\n")
        trickle.settimeout(15)
        assert trickle.recv(4096).startswith(b"HTTP/1.1 405")
        closed = False
        for _ in range(40):  # a byte every half second, far past the 1 s deadline
            try:
                trickle.sendall(b"x")
            except OSError:
                closed = True
                break
            closed = _closed_within(trickle, 0.5)
            if closed:
                break
        trickle.close()
        assert closed
        assert b"200 OK" in _get(port, "/healthz")


@pytest.mark.slow
def test_more_idle_connections_than_descriptors_leave_healthz_up_and_the_log_short() -> None:
    with _server({"OPPORTUNITY_MCP_HEAD_TIMEOUT": "60"}, descriptors=160) as (port, proc):
        idle: list[socket.socket] = []
        for _ in range(300):
            with suppress(OSError):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        # The server holds at most its cap and closes the rest unread; /healthz still answers.
        answered = False
        deadline = time.monotonic() + 20
        while not answered and time.monotonic() < deadline:
            for sock in idle[:20]:  # make room as a client that gives up would
                sock.close()
            idle = idle[20:]
            with suppress(OSError):
                answered = b"200 OK" in _get(port, "/healthz")
        assert answered
        for sock in idle:
            sock.close()
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err
    assert len(err) < 20_000, err[-2000:]


def test_descriptor_exhaustion_is_one_line_per_interval() -> None:
    import logging

    quiet = AcceptExhaustion(every=3600)
    records = []
    for _ in range(1000):
        said = "socket.accept() out of system resource"
        record = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, said, (), None)
        record.exc_info = (OSError, OSError(24, "Too many open files"), None)
        if quiet.filter(record):
            records.append(record)
    (kept,) = records
    assert kept.getMessage() == "accepting connections fails: Too many open files (0 such lines held back)"
    assert kept.exc_info is None
