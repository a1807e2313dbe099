"""Plazbot / Wabotify login: `POST /api/user/login` with an email and a password gives a Bearer token
(`data.token`) that stands where an API key would. The token is kept in memory only (never logged,
never written), renewed a minute before it expires and once after a 401.

Its lifetime: `data.expiresIn` seconds when the answer has it (the Wabotify copy of the docs), else
the JWT's `exp` claim when the token is a JWT, else 50 minutes (no source documents one)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from typing import Any

import anyio
import httpx2
from pydantic import SecretStr

from opportunity_mcp.crm.errors import CrmBadResponse, CrmRejected
from opportunity_mcp.crm.http import upstream_messages
from opportunity_mcp.crm.policy import CallPolicy, request
from opportunity_mcp.scrub import KNOWN

LOGIN_PATH = "/api/user/login"
_SENDABLE = re.compile(r"[!-~]{1,4096}", re.ASCII)  # what a header value can carry
DEFAULT_LIFETIME = 50 * 60.0
RENEW_BEFORE = 60.0


class _Unsendable(Exception):
    """The login answered a token that cannot be sent in a header."""


class PlazbotLogin:
    """The token of one email + password, shared by every call of the account."""

    def __init__(self, http: httpx2.AsyncClient, crm: str, email: str, password: SecretStr) -> None:
        self.http, self.crm, self.email, self._password = http, crm, email, password
        self._token: str | None = None
        self._expires = 0.0
        self._lock = anyio.Lock()  # one login at a time; the others wait for its token

    async def token(self, policy: CallPolicy, *, stale: str | None = None) -> str:
        """A token valid for at least a minute. `stale` is a token the CRM just refused: unless
        another call renewed it meanwhile, log in again."""
        async with self._lock:
            fresh = self._token is not None and time.monotonic() < self._expires - RENEW_BEFORE
            if fresh and self._token != stale:
                assert self._token is not None
                return self._token
            self._token = None
            try:
                token, lifetime = await self._login(policy)
            except _Unsendable:
                try:
                    token, lifetime = await self._login(policy)
                except _Unsendable:
                    raise CrmBadResponse(f"{self.crm} answered the login with a token that cannot be sent") from None
            self._token, self._expires = token, time.monotonic() + lifetime
            return token

    async def _login(self, policy: CallPolicy) -> tuple[str, float]:
        body = {"email": self.email, "password": self._password.get_secret_value()}
        headers = {"Content-Type": "application/json"}
        data = await request(
            policy, self.http, self.crm, "POST", LOGIN_PATH, headers=headers, body=body, idempotent=True
        )
        if not isinstance(data, dict) or data.get("success") is not True:
            reasons = upstream_messages(data)
            said = f": {'; '.join(reasons)}" if reasons else ""
            raise CrmRejected(f"{self.crm} refused the login{said}")
        inner = data.get("data")
        token = inner.get("token") if isinstance(inner, dict) else None
        if not isinstance(inner, dict) or not isinstance(token, str) or not token.strip():
            raise CrmBadResponse(f"{self.crm} answered the login without a token")
        KNOWN.add(token)  # scrubbed from every answer and log line from now on
        if not _SENDABLE.fullmatch(token):
            # A token that cannot go in a header (CR/LF, spaces) would make every request fail for
            # its whole lifetime: not kept; the caller logs in once more.
            raise _Unsendable
        return token, _lifetime(inner, token)


def _lifetime(inner: dict[str, Any], token: str) -> float:
    given = inner.get("expiresIn")
    if isinstance(given, int | float) and not isinstance(given, bool) and math.isfinite(given) and given > 0:
        return float(given)
    exp = _jwt_exp(token)
    if exp is not None:
        return max(0.0, exp - time.time())
    return DEFAULT_LIFETIME


def _jwt_exp(token: str) -> float | None:
    """The `exp` claim of a JWT (read, not verified: it only decides when to log in again)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
