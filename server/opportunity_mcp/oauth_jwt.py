"""An external identity provider instead of this server's own authorization server: an operator with
Auth0, Keycloak or Entra sets its issuer, the audience its tokens carry for this server, and its JWKS
URL; the server then accepts those JWT access tokens (signature, issuer, audience, expiry checked)
and maps them to accounts by a claim (a list, or names separated by spaces; "*" for all). It acts as
resource server only; static bearer tokens keep working beside it.

    OPPORTUNITY_MCP_JWT_ISSUER          https://acme.eu.auth0.com/
    OPPORTUNITY_MCP_JWT_AUDIENCE        https://mcp.example.com/mcp
    OPPORTUNITY_MCP_JWT_JWKS_URL        https://acme.eu.auth0.com/.well-known/jwks.json
    OPPORTUNITY_MCP_JWT_ACCOUNTS_CLAIM  the claim naming the accounts (default: opportunity_accounts)

Keys are fetched with the server's own HTTP stack, kept 5 minutes, and fetched again (at most once
a minute) for a key id not yet seen. Only asymmetric algorithms are taken: never `none`, never HS*.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import httpx2
import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from opportunity_mcp.auth import StaticTokens
from opportunity_mcp.values import base_url

log = logging.getLogger(__name__)
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
KEYS_SECONDS, REFETCH_SECONDS, LEEWAY = 300.0, 60.0, 30


class JwtSettings(BaseSettings):
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", case_sensitive=True)

    issuer: str | None = Field(None, validation_alias="OPPORTUNITY_MCP_JWT_ISSUER")
    audience: str | None = Field(None, validation_alias="OPPORTUNITY_MCP_JWT_AUDIENCE")
    jwks_url: str | None = Field(None, validation_alias="OPPORTUNITY_MCP_JWT_JWKS_URL")
    accounts_claim: str = Field("opportunity_accounts", validation_alias="OPPORTUNITY_MCP_JWT_ACCOUNTS_CLAIM")

    @field_validator("jwks_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        origin = value.split("/", 3)
        base_url("/".join(origin[:3]))  # https, or http on loopback only
        return value

    @model_validator(mode="after")
    def _together(self) -> JwtSettings:
        given = [v is not None for v in (self.issuer, self.audience, self.jwks_url)]
        if any(given) and not all(given):
            raise ValueError(
                "OPPORTUNITY_MCP_JWT_ISSUER, OPPORTUNITY_MCP_JWT_AUDIENCE and OPPORTUNITY_MCP_JWT_JWKS_URL go together"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.issuer is not None


class JwtTokens(TokenVerifier):
    """The SDK's token check: an identity provider's JWT, or else a static bearer token."""

    def __init__(self, settings: JwtSettings, accounts: frozenset[str], static: StaticTokens) -> None:
        assert settings.issuer and settings.audience and settings.jwks_url
        self.settings, self.accounts, self.static = settings, accounts, static
        self._keys: dict[str, Any] = {}
        self._fetched = self._tried = float("-inf")
        self._lock = anyio.Lock()

    async def _key(self, kid: str | None) -> Any:
        """The signing key `kid` names. The set is fetched when missing or old, and again (at most once
        a minute, whatever the requests ask) for a key id not seen yet: a provider rotating its keys.
        One fetch at a time; a failed fetch keeps the keys already known."""
        if self._wanted(kid):
            async with self._lock:
                if self._wanted(kid):  # another request may have fetched them meanwhile
                    self._tried = time.monotonic()
                    try:
                        async with httpx2.AsyncClient(timeout=10, follow_redirects=False, trust_env=False) as http:
                            answer = await http.get(str(self.settings.jwks_url))
                        answer.raise_for_status()
                        found = jwt.PyJWKSet.from_dict(answer.json())
                        self._keys = {k.key_id or "": k for k in found.keys}
                        self._fetched = self._tried
                    except (httpx2.HTTPError, jwt.PyJWTError, ValueError) as exc:
                        log.warning("could not fetch the identity provider's keys (%s)", type(exc).__name__)
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid or "")

    def _wanted(self, kid: str | None) -> bool:
        now = time.monotonic()
        if now - self._tried < REFETCH_SECONDS:
            return False
        known = kid in self._keys or (kid is None and len(self._keys) == 1)
        return not self._keys or now - self._fetched > KEYS_SECONDS or not known

    async def verify_token(self, token: str) -> AccessToken | None:
        if token.count(".") != 2:  # not a JWT: perhaps a static bearer token
            return await self.static.verify_token(token)
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                return None
            key = await self._key(header.get("kid"))
            # The key's own algorithm, when its JWK says one, must be the token's (no confusion).
            if key is None or (getattr(key, "algorithm_name", None) not in (None, header["alg"])):
                return None
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[header["alg"]],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, httpx2.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("refused a JWT (%s)", type(exc).__name__)  # TypeError: a key of another type
            return None
        if "nonce" in claims or "at_hash" in claims:  # an ID token, not an access token
            return None
        scopes = self._accounts(claims.get(self.settings.accounts_claim))
        if not scopes:
            return None
        client = str(claims.get("azp") or claims.get("client_id") or "jwt")
        return AccessToken(
            token=f"jwt:{claims.get('jti') or claims.get('sub') or '-'}",
            client_id=client[:128],
            scopes=scopes,
            expires_at=int(claims["exp"]),
            subject=str(claims.get("sub") or "")[:256] or None,
            claims={"iss": claims.get("iss")},
        )

    def _accounts(self, value: Any) -> list[str]:
        """The configured accounts a claim names ("*": all of them); names it does not know are left out."""
        names = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
        named = {n for n in names if isinstance(n, str)}
        if "*" in named:
            return ["*"]
        return sorted(named & self.accounts)
