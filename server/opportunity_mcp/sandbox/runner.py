"""Serve the sandbox on a loopback socket from a background thread, so the MCP server (with
--sandbox), the tests and the benchmarks reach it over real HTTP."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from opportunity_mcp.sandbox.app import SandboxApp
from opportunity_mcp.sandbox.state import SandboxState


class SandboxServer:
    """`with SandboxServer() as sandbox:` serves until the block ends; `sandbox.url` is its base URL."""

    def __init__(self, state: SandboxState | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state or SandboxState()
        self._socket = socket.create_server((host, port))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as opportunity_mcp.cli: no Nagle stalls
        self.host, self.port = self._socket.getsockname()[:2]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(
            SandboxApp(self.state), log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="sandbox-crm", daemon=True)

    def _serve(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox CRM did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(host: str, port: int, *, lc_burst: int = 100) -> None:
    """`opportunity-mcp sandbox`: the sandbox alone, in the foreground."""
    state = SandboxState(lc_burst=lc_burst)
    config = uvicorn.Config(SandboxApp(state), host=host, port=port, log_level="warning", access_log=False)
    uvicorn.Server(config).run()
