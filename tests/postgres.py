"""A throwaway PostgreSQL server on loopback for the tests and the load run: Debian's packages
(`make postgres` installs them), a data directory in a temporary folder, trust auth on 127.0.0.1,
fsync off. Set OPPORTUNITY_MCP_TEST_POSTGRES to a server URL to use that one instead."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: run `make postgres` (Debian's postgresql package)")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as Debian's postgres user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


# How to stop and start each server this module runs, by URL: the fail-closed and chaos runs restart it.
_CONTROL: dict[str, tuple[str, Path, str, Path]] = {}


def _server_base(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def stop(url: str) -> None:
    """Stop the server `url` is on (fast shutdown: its connections are cut), as an outage would."""
    pg_ctl, data, _options, _log = _CONTROL[_server_base(url)]
    subprocess.run(
        _as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), check=True, capture_output=True
    )


def start(url: str) -> None:
    """Start the server `url` is on again, same port, same data."""
    pg_ctl, data, options, log = _CONTROL[_server_base(url)]
    subprocess.run(
        _as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "start"]),
        check=True,
        capture_output=True,
        timeout=60,
    )


def restartable(url: str) -> bool:
    """Whether this module runs the server (not one given by OPPORTUNITY_MCP_TEST_POSTGRES)."""
    return _server_base(url) in _CONTROL


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a running server (its `postgres` database); stopped and deleted on exit."""
    given = os.environ.get("OPPORTUNITY_MCP_TEST_POSTGRES")
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="opportunity-mcp-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    port = _free_port()

    def run(argv: list[str]) -> None:
        subprocess.run(
            _as_server_user(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, timeout=120
        )

    run([_binary("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=200"
    pg_ctl = _binary("pg_ctl")
    run([pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"])
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    _CONTROL[url] = (pg_ctl, data, options, folder / "log")
    try:
        yield url
    finally:
        _CONTROL.pop(url, None)
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), check=False, capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server, for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + f"/{name}"
