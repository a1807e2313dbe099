"""The server as its own OAuth 2.1 authorization server, for chat clients that add a connector by URL
(claude.ai, ChatGPT): the SDK's handlers (metadata, registration, authorize, token, revoke) over this
provider, which keeps clients and grants in the journal's database (any replica answers any step).

Consent maps onto today's grants: the authorize step sends the person to a small page
(`consent`) asking for a connector code, configured like a bearer token (`[connectors.NAME]` with
`sha256` or `env`, and `accounts`). The tokens issued carry exactly that code's accounts as scopes,
so every scoped thing (tools/list, writes, journal://recent) is scoped the same. Codes are single
use and live 5 minutes; access tokens an hour, refresh tokens 30 days, rotated on use. Only SHA-256
digests of codes and tokens are stored. Static bearer tokens keep working beside OAuth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from opportunity_mcp.auth import StaticTokens
from opportunity_mcp.config import TokenGrant, token_digest
from opportunity_mcp.journal import Journal

CODE_SECONDS = 300
ACCESS_SECONDS = 3600
REFRESH_SECONDS = 30 * 86400
CONSENT_SECONDS = 600  # how long the consent page's form stays good


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class OAuthProvider(OAuthAuthorizationServerProvider[AuthorizationCode, RefreshToken, AccessToken]):
    def __init__(
        self,
        journal: Journal,
        public_url: str,
        connectors: tuple[TokenGrant, ...],
        bearer: StaticTokens,
        accounts: frozenset[str] = frozenset(),
        key: str = "",
    ) -> None:
        self.journal, self.public_url, self.bearer = journal, public_url.rstrip("/"), bearer
        self.resource = f"{self.public_url}/mcp"
        # Each account's own URL is a resource of this server too (`account_paths`).
        self.resources = {self.resource: None} | {f"{self.public_url}/a/{a}/mcp": a for a in accounts}
        self.connectors = {g.digest: g for g in connectors}
        self.by_name = {g.name: g for g in connectors}
        # Signs the consent page's request: from a secret every replica of this configuration shares
        # (the accounts' own secrets, `app.state_key`), never from what the config file shows.
        self._key = hashlib.sha256(b"opportunity-mcp/consent\0" + key.encode()).digest()

    # --- clients -----------------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        info = await self.journal.oauth_client(client_id)
        return None if info is None else OAuthClientInformationFull.model_validate(info)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        await self.journal.save_client(client_info.client_id, client_info.model_dump(mode="json", exclude_none=True))

    # --- authorize: to the consent page, with the request signed -------------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if params.resource is not None and params.resource.rstrip("/") not in self.resources:
            raise AuthorizeError("invalid_request", f"resource must be {self.resource} or an account's URL")
        if not params.state:
            raise AuthorizeError("invalid_request", "state is required")
        request = {
            "client_id": client.client_id,
            "client_name": client.client_name,
            "redirect_uri": str(params.redirect_uri),
            "explicit": params.redirect_uri_provided_explicitly,
            "challenge": params.code_challenge,
            "state": params.state,
            "resource": (params.resource or self.resource).rstrip("/"),
            "expires": int(time.time() + CONSENT_SECONDS),
        }
        return f"{self.public_url}/oauth/consent?request={self.seal(request)}"

    def seal(self, request: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(request, separators=(",", ":")).encode()).decode()
        mac = base64.urlsafe_b64encode(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:24]).decode()
        return f"{body}.{mac}"

    def unseal(self, sealed: str) -> dict[str, Any] | None:
        """The consent request, when this server signed it and it has not expired."""
        body, _, mac = sealed.partition(".")
        if len(sealed) > 8192 or not body or not mac:
            return None
        good = base64.urlsafe_b64encode(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:24]).decode()
        if not hmac.compare_digest(mac.encode(), good.encode()):
            return None
        try:
            request: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            return None
        return request if request.get("expires", 0) >= time.time() else None

    def connector(self, code: str) -> TokenGrant | None:
        """The connector a code a person typed names (compared by digest)."""
        return self.connectors.get(token_digest(code.strip()))

    def scopes(self, request: dict[str, Any], grant: TokenGrant) -> list[str]:
        """The accounts a consented request gets: the connector's, narrowed to the account whose URL
        the client connects to (none: that code does not open it)."""
        only = self.resources.get(request["resource"])
        if only is None:
            return sorted(grant.accounts)
        return [only] if "*" in grant.accounts or only in grant.accounts else []

    async def issue_code(self, request: dict[str, Any], grant: TokenGrant) -> str:
        """An authorization code for the consented request: its accounts are the connector's."""
        code = secrets.token_urlsafe(32)
        data = AuthorizationCode(
            code="",
            scopes=self.scopes(request, grant),
            expires_at=time.time() + CODE_SECONDS,
            client_id=request["client_id"],
            code_challenge=request["challenge"],
            redirect_uri=request["redirect_uri"],
            redirect_uri_provided_explicitly=request["explicit"],
            resource=request["resource"],
            # The connector by name and by a piece of its code's digest: a code replaced under the
            # same name (a leaked one rotated) takes the grants made with the old one with it.
            subject=f"{grant.name}#{grant.digest[:16]}",
        )
        client_id = request["client_id"]
        await self.journal.put_grant(digest(code), "code", client_id, data.model_dump(mode="json"), data.expires_at)
        return code

    # --- codes and tokens ----------------------------------------------------------------------------

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        data = await self.journal.grant(digest(authorization_code), "code")
        if data is None or data["client_id"] != client.client_id:
            return None
        return AuthorizationCode.model_validate({**data, "code": authorization_code})

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        taken = await self.journal.take_grant(digest(authorization_code.code), "code")  # single use
        if taken is None:
            raise TokenError("invalid_grant", "the authorization code was already used or has expired")
        code = authorization_code
        return await self._tokens(client, code.scopes, code.resource, code.subject)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        data = await self.journal.grant(digest(refresh_token), "refresh")
        if data is None or data["client_id"] != client.client_id:
            return None
        return RefreshToken.model_validate({**data, "token": refresh_token})

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        taken = await self.journal.take_grant(digest(refresh_token.token), "refresh")  # rotated: used once
        if taken is None:
            raise TokenError("invalid_grant", "the refresh token was already used or has expired")
        narrowed = [s for s in scopes if s in refresh_token.scopes] if scopes else refresh_token.scopes
        still = self.current(narrowed, refresh_token.subject)
        if not still:
            raise TokenError("invalid_grant", "the connector code this grant came from no longer opens any account")
        return await self._tokens(client, still, refresh_token.resource, refresh_token.subject)

    async def _tokens(
        self, client: OAuthClientInformationFull, scopes: list[str], resource: str | None, subject: str | None
    ) -> OAuthToken:
        assert client.client_id is not None
        access, refresh, now = "oat_" + secrets.token_urlsafe(32), "ort_" + secrets.token_urlsafe(32), time.time()
        common = {"client_id": client.client_id, "scopes": scopes, "resource": resource, "subject": subject}
        pairs = (("access", access, refresh, ACCESS_SECONDS), ("refresh", refresh, access, REFRESH_SECONDS))
        for kind, secret, other, seconds in pairs:
            # Each names its pair's digest, so revoking one revokes both.
            data = {**common, "expires_at": int(now + seconds), "pair": digest(other)}
            await self.journal.put_grant(digest(secret), kind, client.client_id, data, now + seconds)  # type: ignore[arg-type]
        return OAuthToken(
            access_token=access, expires_in=ACCESS_SECONDS, refresh_token=refresh, scope=" ".join(scopes) or None
        )

    def current(self, scopes: list[str], subject: str | None) -> list[str]:
        """The accounts a grant still reaches: its connector's as configured now (a code removed or
        narrowed since takes its grants with it)."""
        name, _, code = (subject or "").partition("#")
        grant = self.by_name.get(name)
        if grant is None or not code or not grant.digest.startswith(code):
            return []
        if "*" in grant.accounts:
            return scopes
        if "*" in scopes:
            return sorted(grant.accounts)
        return [s for s in scopes if s in grant.accounts]

    async def load_access_token(self, token: str) -> AccessToken | None:
        data = await self.journal.grant(digest(token), "access")
        if data is not None:
            data["scopes"] = self.current(data.get("scopes") or [], data.get("subject"))
            if not data["scopes"]:
                return None
            # Any of this server's own URLs is this resource (the URL narrows the accounts itself).
            resource = self.resource if data.get("resource") in self.resources else data.get("resource")
            return AccessToken.model_validate({**data, "token": digest(token), "resource": resource})
        static = await self.bearer.verify_token(token)  # a static bearer token, good for this server only
        return None if static is None else static.model_copy(update={"resource": self.resource})

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        # An access token arrives with its digest as `token` (as loaded); a refresh token in plain.
        known = token.token if isinstance(token, AccessToken) else digest(token.token)
        data = await self.journal.grant(known, "access" if isinstance(token, AccessToken) else "refresh") or {}
        await self.journal.drop_grants([known, *([data["pair"]] if isinstance(data.get("pair"), str) else [])])
