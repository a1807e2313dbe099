"""The HTTP policy every CRM client shares: one pooled client, explicit timeouts, and one place
where HTTP outcomes become `CrmError`s.

Nothing here returns or logs a raw body, a header or a token: upstream text only reaches an error
message through `upstream_messages`, which keeps the CRM's own short `message` strings.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx2

from opportunity_mcp.crm.errors import (
    CrmAuthError,
    CrmBadResponse,
    CrmConnectError,
    CrmError,
    CrmInvalid,
    CrmNoAnswer,
    CrmNotFound,
    CrmRateLimited,
    CrmRejected,
    CrmTimedOut,
    CrmUnavailable,
)
from opportunity_mcp.untrusted import MESSAGE_LIMIT, quoted

log = logging.getLogger("opportunity_mcp.crm")

_RATE_HEADERS = ("x-ratelimit-remaining", "x-ratelimit-interval-milliseconds")


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of milliseconds of start-up: do it once for every client.
    return httpx2.create_ssl_context()


def segment(value: str) -> str:
    """An id as one path segment: percent-encoded, so that no id can name another path ('/', '?',
    '#'); '.' and '..' are refused, since the HTTP client would resolve them away."""
    if not value.strip("."):
        raise ValueError(f"{value!r} cannot be a path segment")
    return quote(value, safe="")


def make_http_client(base_url: str, timeout: float, user_agent: str) -> httpx2.AsyncClient:
    """The one pooled client a CRM family uses for the life of the server."""
    # Plain http is only ever a loopback sandbox (config refuses it elsewhere): no TLS to set up.
    verify: ssl.SSLContext | bool = _tls() if base_url.startswith("https://") else False
    return httpx2.AsyncClient(
        base_url=base_url,
        verify=verify,
        timeout=httpx2.Timeout(timeout, connect=min(timeout, 5.0), pool=min(timeout, 5.0)),
        limits=httpx2.Limits(max_connections=50, max_keepalive_connections=20, keepalive_expiry=30.0),
        headers={"User-Agent": user_agent, "Accept": "application/json"},
        follow_redirects=False,
        trust_env=False,
    )


async def send(
    client: httpx2.AsyncClient,
    crm: str,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
    time_left: float | None = None,
    rate: dict[str, str] | None = None,
) -> Any:
    """Send one request and return the decoded JSON of a 2xx answer; raise a CrmError otherwise.

    `time_left` (the call's remaining budget) shortens the client's own timeouts, never lengthens them.
    `rate`, when given, receives the answer's rate-limit headers (whatever its status)."""
    extra: dict[str, Any] = {}
    if time_left is not None and time_left < (client.timeout.read or float("inf")):
        timeout, configured = time_left, client.timeout
        extra["timeout"] = httpx2.Timeout(
            min(configured.read or timeout, timeout),
            connect=min(configured.connect or timeout, timeout),
            write=min(configured.write or timeout, timeout),
            pool=min(configured.pool or timeout, timeout),
        )
    try:
        request = client.build_request(method, path, headers=headers, params=params, json=body, **extra)
        response = await client.send(request, stream=True)
        try:
            status, response_headers = response.status_code, response.headers
            if rate is not None:
                rate.update((name, response_headers[name]) for name in _RATE_HEADERS if name in response_headers)
            content = await _read_capped(response)
        finally:
            await response.aclose()
    except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
        # Nothing left this process: safe to say it was not sent.
        log.warning("%s %s %s: could not connect (%s)", crm, method, path, type(exc).__name__)
        raise CrmConnectError(f"could not connect to {crm} at {client.base_url.host}") from None
    except (httpx2.LocalProtocolError, httpx2.UnsupportedProtocol, httpx2.InvalidURL) as exc:
        # The request could not even be written (e.g. a header value with a newline).
        log.warning("%s %s %s: request not sendable (%s)", crm, method, path, type(exc).__name__)
        raise CrmConnectError(
            f"the request to {crm} could not be sent (check the configured URL and secrets)"
        ) from None
    except httpx2.TimeoutException as exc:
        log.warning("%s %s %s: no answer in time (%s)", crm, method, path, type(exc).__name__)
        raise CrmTimedOut(f"{crm} did not answer in time") from None
    except _TooLarge:
        log.warning("%s %s %s: answer larger than %d bytes", crm, method, path, MAX_BODY)
        raise CrmBadResponse(f"{crm} sent an answer too large to be an opportunity") from None
    except httpx2.RequestError as exc:
        # Dropped connections, undecodable bodies: the request went out, the answer is lost.
        log.warning("%s %s %s: connection lost (%s)", crm, method, path, type(exc).__name__)
        raise CrmNoAnswer(f"the connection to {crm} dropped before it answered") from None

    log.info("%s %s %s -> %d", crm, method, path, status)
    data = _decode(content)
    if 200 <= status < 300:
        if data is _NOT_JSON:
            raise CrmBadResponse(f"{crm} answered HTTP {status} with a body that is not JSON", status=status)
        return data
    raise status_error(crm, status, data if data is not _NOT_JSON else None, response_headers)


MAX_BODY = 1 << 20  # 1 MiB: far above any opportunity answer, far below a memory problem


class _TooLarge(Exception):
    pass


async def _read_capped(response: httpx2.Response) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit():
        if int(declared) > MAX_BODY:
            raise _TooLarge
        return await response.aread()  # one read: the size is known and small enough
    content = bytearray()
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) > MAX_BODY:
            raise _TooLarge
    return bytes(content)


_NOT_JSON: Any = object()


def _decode(content: bytes) -> Any:
    if not content:
        return _NOT_JSON
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


def status_error(crm: str, status: int, data: Any, headers: Mapping[str, str]) -> CrmError:
    """Map a non-2xx answer to the CrmError an agent can act on."""
    reasons = upstream_messages(data)
    said = f": {'; '.join(reasons)}" if reasons else ""
    if status in (401, 403):
        what = "refused the credentials" if status == 401 else "refused permission"
        return CrmAuthError(f"{crm} {what} (HTTP {status}){said}", status=status)
    if status == 404:
        return CrmNotFound(f"{crm} did not find what the request names (HTTP 404){said}", status=status)
    if status in (400, 409, 422):
        return CrmInvalid(f"{crm} refused the values (HTTP {status}){said}", status=status, details=reasons)
    if status == 429:
        return CrmRateLimited(
            f"{crm} is limiting the request rate (HTTP 429)", retry_after=retry_after_seconds(headers)
        )
    if status >= 500:
        return CrmUnavailable(f"{crm} failed on its side (HTTP {status})", status=status)
    return CrmRejected(f"{crm} answered HTTP {status}{said}", status=status)


def upstream_messages(data: Any) -> tuple[str, ...]:
    """The CRM's own short reasons from an error body: `message` (a string or a list of strings)."""
    if not isinstance(data, dict):
        return ()
    raw = data.get("message")
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items[:3]:
        if isinstance(item, str) and item.strip():
            out.append(quoted(item, MESSAGE_LIMIT))  # the CRM's words, quoted: data, not instructions
    return tuple(out)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or an HTTP date), else from LeadConnector's
    `X-RateLimit-Remaining: 0` with `X-RateLimit-Interval-Milliseconds`."""
    value = headers.get("retry-after")
    if value:
        try:
            return _sane_wait(float(value))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
                return _sane_wait((when - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                pass
    remaining, interval = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-interval-milliseconds")
    if remaining is not None and interval is not None:
        try:
            if int(remaining) <= 0:
                return _sane_wait(float(interval) / 1000.0)
        except ValueError:
            return None
    return None


def _sane_wait(seconds: float) -> float | None:
    """A wait the CRM asked for, if it is a real one: finite, not negative, at most an hour."""
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, 3600.0)
