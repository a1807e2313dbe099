"""The HTTP application, built in memory from a config: the MCP endpoint (stateless, so any replica
answers any request), `GET /healthz`, bearer-token auth, Host/Origin checks, the body limit, and any
extra routes the caller wires in (the sandbox board). Serving it is `serve`'s job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from opportunity_mcp import __version__
from opportunity_mcp.account_paths import LOOPBACK_HOSTS, AccountPaths, OAuthHosts
from opportunity_mcp.app import build_server, state_key
from opportunity_mcp.auth import StaticTokens
from opportunity_mcp.config import ConfigError, HttpSettings, ServerConfig, TokenGrant
from opportunity_mcp.connections import BodyTimeout, PostOnly
from opportunity_mcp.consent import consent_routes
from opportunity_mcp.journal import Journal
from opportunity_mcp.oauth import OAuthProvider
from opportunity_mcp.oauth_jwt import JwtSettings, JwtTokens
from opportunity_mcp.tools import specs_for
from opportunity_mcp.values import LOOPBACK, first_error

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How the endpoint is served: where (`host`, and `url` for the auth settings), which tokens it
    accepts (none: open, loopback only), its guards, and plain JSON answers unless `sse`."""

    host: str = "127.0.0.1"
    url: str = "http://127.0.0.1"
    grants: tuple[TokenGrant, ...] = ()
    settings: HttpSettings | None = None
    sse: bool = False
    routes: Sequence[tuple[str, Endpoint]] = ()


def _identity(
    config: ServerConfig, bearer: tuple[TokenGrant, ...], connectors: tuple[TokenGrant, ...]
) -> JwtTokens | None:
    """An external identity provider's token check, when its settings are given (`oauth_jwt`)."""
    try:
        settings = JwtSettings()
    except ValueError as exc:
        raise ConfigError(f"Invalid configuration: {first_error(exc)}") from None
    if not settings.enabled:
        return None
    if connectors:
        raise ConfigError("connectors (this server's own OAuth) and OPPORTUNITY_MCP_JWT_* (another's): choose one")
    return JwtTokens(settings, frozenset(a.name for a in config.accounts), StaticTokens(bearer))


def resource_metadata(oauth: OAuthProvider) -> Endpoint:
    async def metadata(_: Request) -> Response:
        body = {
            "resource": oauth.resource,
            "authorization_servers": [oauth.public_url],
            "bearer_methods_supported": ["header"],
        }
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})

    return metadata


def transport_security(host: str, http: HttpSettings) -> TransportSecuritySettings | None:
    """Host/Origin checks. On loopback the SDK's own (localhost only) apply; bound anywhere else they
    stay on, for the host names configured, and starting without any is refused."""
    if host in LOOPBACK:
        return None
    hosts = http.hosts()
    if not hosts:
        raise ConfigError(
            f"bound to {host}: set OPPORTUNITY_MCP_ALLOWED_HOSTS to the host names clients use "
            "(comma-separated, e.g. mcp.example.com,mcp.example.com:*), so Host checks stay on"
        )
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=http.origins()
    )


def build_http_app(config: ServerConfig, journal: Journal, options: HttpOptions) -> Starlette:
    """The whole HTTP application; raises ConfigError when the guards cannot be set up."""
    http = options.settings or HttpSettings()
    security = transport_security(options.host, http)
    bearer = tuple(g for g in options.grants if not g.connector)
    connectors = tuple(g for g in options.grants if g.connector)
    tokens: TokenVerifier | None = StaticTokens(bearer) if bearer else None
    oauth = None
    if connectors:
        if config.public_url is None:
            raise ConfigError(
                "connectors need OPPORTUNITY_MCP_PUBLIC_URL: the https:// origin clients reach this server at"
            )
        accounts = frozenset(a.name for a in config.accounts)
        oauth = OAuthProvider(
            journal, config.public_url, connectors, StaticTokens(bearer), accounts, key=state_key(config)
        )
    identity = _identity(config, bearer, connectors)
    auth = None
    if identity is not None:
        tokens = identity
        resource = f"{config.public_url}/mcp" if config.public_url else None
        auth = AuthSettings.model_validate(
            {"issuer_url": identity.settings.issuer, "resource_server_url": resource, "validate_token_resource": False}
        )
    server = build_server(config, journal, tokens=tokens, url=options.url, stateless=True, oauth=oauth, auth=auth)
    for path, endpoint in options.routes:
        server.custom_route(path, methods=["GET"])(endpoint)
    if oauth is not None:
        for path, method, endpoint in consent_routes(oauth):
            server.custom_route(path, methods=[method])(endpoint)
        # RFC 9728's metadata is also looked for at the root well-known URL, not only the path-suffixed one.
        server.custom_route("/.well-known/oauth-protected-resource", methods=["GET"])(resource_metadata(oauth))
    names = [spec.name for spec in specs_for(config.families())]

    async def healthz(_: Request) -> Response:
        """For load balancers and probes: the process answers and its journal can be written and read
        (a replica that cannot record writes refuses them, so it should get no traffic)."""
        problem = await journal.health()
        if problem is not None:
            return JSONResponse({"ok": False, "journal": problem}, status_code=503)
        return JSONResponse({"ok": True, "version": __version__, "tools": names})

    server.custom_route("/healthz", methods=["GET"])(healthz)
    app = server.streamable_http_app(
        stateless_http=True,
        json_response=not options.sse,
        host=options.host,
        transport_security=security,
        max_request_body_size=http.max_body,
    )
    app.add_middleware(PostOnly)
    every = frozenset(a.name for a in config.accounts)
    app.add_middleware(AccountPaths, accounts=every, public_url=oauth.public_url if oauth else None)
    if oauth is not None:
        hosts = tuple(security.allowed_hosts) if security is not None else LOOPBACK_HOSTS
        app.add_middleware(OAuthHosts, hosts=hosts)
    app.add_middleware(BodyTimeout, seconds=http.body_timeout)
    return app
