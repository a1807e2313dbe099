"""Logging: to stderr only (stdout is the protocol on stdio), one format, and a filter that takes
every configured secret out of every line, whichever library wrote it (uvicorn's included: it is
started with no logging config of its own, so its lines reach the same handler)."""

from __future__ import annotations

import logging
import os
import sys

# Request lines of the HTTP client and per-request session notes of the SDK add nothing to our own
# log lines; they come back with OPPORTUNITY_MCP_LOG_LEVEL=DEBUG.
_NOISY = ("httpx2", "httpcore2", "httpx", "httpcore", "mcp", "uvicorn", "uvicorn.error", "uvicorn.access")


def configure() -> None:
    level = os.environ.get("OPPORTUNITY_MCP_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        stream=sys.stderr,
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if level != "DEBUG":
        for noisy in _NOISY:
            logging.getLogger(noisy).setLevel(logging.WARNING)


class Scrub(logging.Filter):
    """Replaces every configured secret in a record's message with [redacted]."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        return True


def scrub(secrets: tuple[str, ...]) -> None:
    """Scrub these secrets from every line the root handlers write."""
    if secrets:
        for handler in logging.getLogger().handlers:
            handler.addFilter(Scrub(secrets))


def say(line: str) -> None:
    """One line for the person who started the server; stderr, since stdout is the protocol."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
