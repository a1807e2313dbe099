"""Bearer tokens for the HTTP transport: static tokens from the config file, each allowed a set of
accounts. Only their SHA-256 digests are held; a presented token is hashed and looked up, so neither
the config nor the logs ever carry one in plain text."""

from __future__ import annotations

import logging
import secrets

from mcp.server.auth.provider import AccessToken, TokenVerifier

from opportunity_mcp.config import TokenGrant, token_digest

log = logging.getLogger(__name__)


class StaticTokens(TokenVerifier):
    """The SDK's token check, against the grants of the config file."""

    def __init__(self, grants: tuple[TokenGrant, ...]) -> None:
        # Connector codes are typed on the consent page, never presented as bearer tokens.
        self._grants = {grant.digest: grant for grant in grants if not grant.connector}

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = token_digest(token)
        grant = self._grants.get(digest)
        if grant is None:
            # The digest's head tells an operator which token was tried without revealing it.
            log.warning("refused a bearer token (sha256 %s…)", digest[:8])
            return None
        # `scopes` carries the account names (or "*"): the tools check them before any write.
        return AccessToken(token=digest, client_id=grant.name, scopes=sorted(grant.accounts))


def new_token() -> tuple[str, str]:
    """A fresh random token and its SHA-256, for `opportunity-mcp token`."""
    token = "omcp_" + secrets.token_urlsafe(32)
    return token, token_digest(token)
