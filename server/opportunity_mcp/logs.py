"""Logging: to stderr only (stdout is the protocol on stdio), one format, and a filter that takes
every configured secret out of every line, whichever library wrote it (uvicorn's included: it is
started with no logging config of its own, so its lines reach the same handler)."""

from __future__ import annotations

import logging
import os
import sys

from opportunity_mcp.scrub import KNOWN

# Request lines of the HTTP client and per-request session notes of the SDK add nothing to our own
# log lines; they come back with OPPORTUNITY_MCP_LOG_LEVEL=DEBUG.
_NOISY = ("httpx2", "httpcore2", "httpx", "httpcore", "mcp", "uvicorn", "uvicorn.error", "uvicorn.access")


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure() -> str | None:
    """Log to stderr at OPPORTUNITY_MCP_LOG_LEVEL; what is wrong with that variable, if anything
    (the caller refuses to start: a typo must not silently log at another level)."""
    level = (os.environ.get("OPPORTUNITY_MCP_LOG_LEVEL") or "INFO").strip().upper()
    problem = None if level in LEVELS else f"OPPORTUNITY_MCP_LOG_LEVEL: must be one of {', '.join(LEVELS)}"
    level = level if problem is None else "INFO"
    logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for noisy in _NOISY:
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return problem


class Scrub(logging.Filter):
    """Takes every secret the process knows (`scrub.KNOWN`, login tokens included as they are
    learned) out of a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = KNOWN.scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def scrub(secrets: tuple[str, ...] = ()) -> None:
    """Know these secrets too, and scrub every line the root handlers write."""
    KNOWN.add(*secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Scrub) for f in handler.filters):
            handler.addFilter(Scrub())


def say(line: str) -> None:
    """One line for the person who started the server; stderr, since stdout is the protocol."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
