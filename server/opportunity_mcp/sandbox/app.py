"""The sandbox as an ASGI app: both upstream APIs, request recording, fault injection, and a small
control API under /_sandbox/ for processes that cannot reach the state object (benchmarks, a
bot flow under test):

    GET    /_sandbox/state      opportunities written, counts, variants played
    GET    /_sandbox/requests   every request received (method, path, query, headers, body)
    POST   /_sandbox/faults     inject a fault: {"route": "plazbot.create", "status": 503, ...}
    DELETE /_sandbox/faults     clear injected faults
    POST   /_sandbox/options    {"plazbot_update_style": "param|fields", "upsert_shapes": ...}
    POST   /_sandbox/reset      forget everything
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from opportunity_mcp.sandbox import custom_fields, deals, leadconnector, lookups, plazbot
from opportunity_mcp.sandbox.state import Fault, Options, Recorded, SandboxState

log = logging.getLogger("opportunity_mcp.sandbox")

Handler = Callable[[SandboxState, Mapping[str, str], Mapping[str, str], Any], tuple[int, Any]]
ROUTES: dict[tuple[str, str], tuple[str, Handler]] = {
    ("POST", "/api/opportunity"): ("plazbot.create", plazbot.create),
    ("PUT", "/api/opportunity"): ("plazbot.update", plazbot.update),
    ("GET", "/api/opportunity"): ("plazbot.list", deals.plazbot_list),
    ("POST", "/api/user/login"): ("plazbot.login", plazbot.login),
    ("GET", "/api/contact/searchByCellphone"): ("plazbot.contact_phone", lookups.pz_by_phone),
    ("GET", "/api/contact/searchByEmail"): ("plazbot.contact_email", lookups.pz_by_email),
    ("GET", "/contacts/search/duplicate"): ("lc.contact_duplicate", lookups.lc_duplicate),
    ("GET", "/opportunities/pipelines"): ("lc.pipelines", lookups.lc_pipelines),
    ("GET", "/users/search"): ("lc.users", lookups.lc_users),
    ("GET", "/opportunities/lost-reason"): ("lc.lost_reasons", lookups.lc_lost_reasons),
    ("POST", "/opportunities/upsert"): ("lc.upsert", leadconnector.upsert),
    ("GET", "/opportunities/search"): ("lc.search", deals.lc_search),
    ("POST", "/opportunities"): ("lc.create", deals.lc_create),
}
# GET routes with an id in the path, longest prefix first: (prefix, route name, handler of the id).
BY_ID: tuple[
    tuple[str, str, Callable[[SandboxState, Mapping[str, str], Mapping[str, str], str], tuple[int, Any]]], ...
] = (
    ("/api/workspace/usersByWorkspaceId/", "plazbot.users", lambda s, h, q, ws: lookups.pz_users(s, h, ws)),
    ("/api/workspace/", "plazbot.workspace", lambda s, h, q, ws: lookups.pz_workspace(s, h, ws)),
    ("/api/opportunity/", "plazbot.get", plazbot.get),
    ("/locations/", "lc.location", lambda s, h, q, loc: lookups.lc_location(s, h, loc)),
    ("/opportunities/", "lc.get", leadconnector.get),
)
ROUTE_NAMES = frozenset(
    {name for name, _ in ROUTES.values()} | {name for _, name, _ in BY_ID} | {"lc.custom_fields", "lc.update"}
)


def _resolve(method: str, path: str) -> tuple[str, Handler] | None:
    found = ROUTES.get((method, path.rstrip("/") or "/"))
    if found:
        return found
    parts = path.strip("/").split("/")
    if method == "GET" and len(parts) == 3 and parts[0] == "locations" and parts[2] == "customFields":
        return "lc.custom_fields", _by_id(custom_fields.definitions, parts[1])
    if method == "PUT" and len(parts) == 2 and parts[0] == "opportunities" and parts[1]:
        return "lc.update", _with_body(custom_fields.update, parts[1])
    if method == "GET":
        for prefix, name, getter in BY_ID:
            rest = path[len(prefix) :]
            if path.startswith(prefix) and rest and "/" not in rest:
                return name, _by_id(getter, rest)
    return None


def _with_body(
    writer: Callable[[SandboxState, Mapping[str, str], Mapping[str, str], str, Any], tuple[int, Any]], opp_id: str
) -> Handler:
    def handler(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], body: Any) -> Any:
        return writer(state, headers, query, opp_id, body)

    return handler


def _by_id(
    getter: Callable[[SandboxState, Mapping[str, str], Mapping[str, str], str], tuple[int, Any]], opp_id: str
) -> Handler:
    def handler(state: SandboxState, headers: Mapping[str, str], query: Mapping[str, str], _body: Any) -> Any:
        return getter(state, headers, query, opp_id)

    return handler


def _abort(receive: Receive) -> bool:
    """Close the TCP connection without an answer. ASGI has no verb for it, so reach the
    transport through uvicorn's receive callable; tell the caller when that is not possible."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        return False
    transport.abort()
    return True


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _faulted(fault: Fault, receive: Receive, response: Response) -> Response | None:
    """What a fault makes of an answer: later, dropped (None), or replaced by the fault's own."""
    if fault.delay:
        await anyio.sleep(fault.delay)
    if fault.drop == "after" and _abort(receive):
        return None
    if fault.status is not None:
        return Response(fault.body or "", fault.status, fault.headers or None, media_type=fault.content_type)
    return response


def _lagging(fault: Fault | None, receive: Receive) -> bool:
    """Whether a fault drops the connection now and applies its write later (the connection is dropped)."""
    return fault is not None and fault.lag > 0 and _abort(receive)


class SandboxApp:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.url.path.startswith("/_sandbox/"):
            await (await self._control(request))(scope, receive, send)
            return
        resolved = _resolve(request.method, request.url.path)
        if resolved is None:
            await JSONResponse({"statusCode": 404, "message": "Not Found"}, 404)(scope, receive, send)
            return
        await self._crm(request, *resolved, receive, send)

    async def _crm(self, request: Request, name: str, handler: Handler, receive: Receive, send: Send) -> None:
        """One request to a CRM route, with the fault waiting for it, if any."""
        scope = request.scope
        fault = self.state.take_fault(name)
        if fault is not None and fault.drop == "before" and _abort(receive):
            return
        raw = await request.body()
        body = _json_or_text(raw)
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        self.state.record(Recorded(name, request.method, request.url.path, query, headers, body))

        rate: dict[str, str] = {}
        if name.startswith("lc."):
            over, rate = self.state.lc_burst.arrive()
            if over:
                refusal = {"statusCode": 429, "message": "Too Many Requests - Rate limit exceeded"}
                await JSONResponse(refusal, 429, rate)(scope, receive, send)
                return
        if _lagging(fault, receive):
            assert fault is not None
            threading.Timer(fault.lag, handler, (self.state, headers, query, body)).start()
            return
        apply = fault is None or fault.status is None or fault.apply
        status, payload = handler(self.state, headers, query, body) if apply else (0, None)
        response: Response | None = JSONResponse(payload, status, rate or None)
        if fault is not None and response is not None:
            response = await _faulted(fault, receive, response)
        if response is not None:
            await response(scope, receive, send)

    async def _control(self, request: Request) -> Response:
        state, path, method = self.state, request.url.path, request.method
        if path == "/_sandbox/state" and method == "GET":
            return JSONResponse(state.snapshot())
        if path == "/_sandbox/requests" and method == "GET":
            with state.lock:
                return JSONResponse([r.as_dict() for r in state.requests])
        if path == "/_sandbox/reset" and method == "POST":
            state.reset()
            return JSONResponse({"ok": True})
        if path == "/_sandbox/faults" and method == "DELETE":
            with state.lock:
                state.faults.clear()
            return JSONResponse({"ok": True})
        if path in ("/_sandbox/faults", "/_sandbox/options") and method == "POST":
            try:
                data = json.loads(await request.body())
                if path == "/_sandbox/faults":
                    state.inject(fault_from(data))
                else:
                    set_options(state, data)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"ok": False, "error": str(exc)}, 400)
            return JSONResponse({"ok": True})
        return JSONResponse({"ok": False, "error": "unknown control endpoint"}, 404)


def fault_from(data: Any) -> Fault:
    if not isinstance(data, dict):
        raise ValueError("a fault is a JSON object")
    known = {f.name for f in fields(Fault)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    fault = Fault(**data)
    if fault.route != "*" and fault.route not in ROUTE_NAMES:
        raise ValueError(f"route must be '*' or one of {sorted(ROUTE_NAMES)}")
    return fault


def set_options(state: SandboxState, data: Any) -> None:
    if not isinstance(data, dict):
        raise ValueError("options are a JSON object")
    allowed = {
        "plazbot_update_style": ("param", "fields"),
        "upsert_shapes": ("followers", "contact", "either"),
        "plazbot_get_shape": ("envelope", "bare"),
    }
    for key, value in data.items():
        if key not in allowed or value not in allowed[key]:
            raise ValueError(f"{key} must be one of {allowed.get(key)}")
    with state.lock:
        state.options = Options(**{**vars(state.options), **data})


def _json_or_text(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")
