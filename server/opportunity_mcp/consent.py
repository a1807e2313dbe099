"""The OAuth consent page: plain HTML, no script. It names the client asking and takes the connector
code an operator issued (`[connectors.NAME]`); the right code sends the browser back to the client
with an authorization code for that connector's accounts. A wrong code says so, and after
`MAX_TRIES` wrong codes in `TRY_WINDOW` seconds for one client and address (or 20 for one address,
however many clients it registers) the page refuses more.

The page cannot be framed, posts only to itself, and a post from another origin is refused; the
request it carries is signed by the server (`OAuthProvider.seal`) and expires."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.provider import construct_redirect_uri
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from opportunity_mcp.oauth import OAuthProvider
from opportunity_mcp.untrusted import clean

MAX_TRIES = 5  # wrong codes per client and address in the window
MAX_TRIES_PER_ADDRESS = 20  # and per address, whichever clients it registers
TRY_WINDOW = 900.0
HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "same-origin",  # no-referrer would make the form post Origin: null
    "Cache-Control": "no-store",
}


def _headers(redirect_uri: str) -> dict[str, str]:
    """The page's headers; the form may lead only here and, by the redirect that follows a right code,
    to the client's registered callback (browsers hold a form's redirect to `form-action` too)."""
    parts = urlsplit(redirect_uri)
    if parts.scheme in ("http", "https") and parts.netloc:
        back = f"{parts.scheme}://{parts.netloc}"
    else:  # a native app's own scheme (cursor://…): the scheme is the source
        back = f"{parts.scheme}:" if parts.scheme.isalnum() else ""
    policy = HEADERS["Content-Security-Policy"].replace("form-action 'self'", f"form-action 'self' {back}".rstrip())
    return {**HEADERS, "Content-Security-Policy": policy}


def _page(request: dict[str, Any], sealed: str, problem: str = "", status: int = 200) -> HTMLResponse:
    client = html.escape(clean(str(request.get("client_name") or request.get("client_id") or "an app"), 80))
    # Any app may register any name: where the code goes back to is what a person can check.
    parts = urlsplit(str(request.get("redirect_uri", "")))
    back = html.escape(clean(parts.netloc or f"{parts.scheme}:", 120))
    said = f'<p role="alert"><strong>{html.escape(problem)}</strong></p>' if problem else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Connect to opportunity-mcp</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
input,button{{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;margin:.25rem 0}}</style></head>
<body><h1>Connect {client}</h1>
<p><b>{client}</b> asks to write CRM opportunities through this server. Enter the connector code your
administrator gave you; the connection will reach only the accounts that code allows.</p>
<p>After this you go back to <b>{back}</b>. If that is not the app you are connecting, stop here.</p>{said}
<form method="post" action="/oauth/consent">
<input type="hidden" name="request" value="{html.escape(sealed)}">
<label for="code">Connector code</label>
<input id="code" name="code" type="password" autocomplete="off" required maxlength="200">
<button type="submit">Connect</button></form></body></html>"""
    return HTMLResponse(body, status_code=status, headers=_headers(str(request.get("redirect_uri", ""))))


def _refused(message: str, status: int) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><p>{html.escape(message)}</p>", status_code=status, headers=HEADERS)


def consent_routes(provider: OAuthProvider) -> list[tuple[str, str, Any]]:
    """(path, method, endpoint) of the consent page."""

    async def show(request: Request) -> Response:
        sealed = request.query_params.get("request", "")
        found = provider.unseal(sealed)
        if found is None:
            return _refused("This sign-in link is not valid or has expired; start again from your app.", 400)
        return _page(found, sealed)

    async def submit(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") != provider.public_url:
            return _refused("Refused: the form was posted from another site.", 403)
        form = await request.form(max_files=0, max_fields=4)
        sealed, code = str(form.get("request", "")), str(form.get("code", ""))
        found = provider.unseal(sealed)
        if found is None:
            return _refused("This sign-in link is not valid or has expired; start again from your app.", 400)
        address = request.client.host if request.client else "-"
        keys = (f"{found['client_id']}|{address}", f"*|{address}")
        # Counted before the code is checked, in one statement each, so parallel guesses count too.
        tries = [await provider.journal.count_try(k, TRY_WINDOW) for k in keys]
        if tries[0] > MAX_TRIES or tries[1] > MAX_TRIES_PER_ADDRESS:
            return _page(found, sealed, "Too many wrong codes: wait 15 minutes and try again.", 429)
        grant = provider.connector(code) if 0 < len(code) <= 200 else None
        if grant is None:
            return _page(found, sealed, "That code is not right. Check it with your administrator.", 400)
        for key in keys:  # only wrong codes count: a right one takes its try back
            await provider.journal.count_try(key, TRY_WINDOW, step=-1)
        if not provider.scopes(found, grant):
            return _page(found, sealed, "That code does not open the account of this URL.", 403)
        issued = await provider.issue_code(found, grant)
        target = construct_redirect_uri(found["redirect_uri"], code=issued, state=found["state"])
        return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})

    return [("/oauth/consent", "GET", show), ("/oauth/consent", "POST", submit)]
