"""Plazbot / Wabotify (one backend): create an opportunity, update one field of it.

Contract (see the project README's "Upstream notes"): every call sends `Authorization: Bearer
<api key>` and `x-workspace-id`, equal to the workspace in the body or query. Answers are an
envelope `{success, code, errorCode, message, data}`; a 200 with `success: false` is a failure.
The update answer names the object `data.opportunity` or, in older deployments, `data.oportunity`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opportunity_mcp.crm.base import Account, Family, Wiring
from opportunity_mcp.crm.errors import (
    CrmAuthError,
    CrmBadResponse,
    CrmError,
    CrmNotApplied,
    CrmNotFound,
    CrmRejected,
    CrmUnavailable,
)
from opportunity_mcp.crm.http import segment, status_error, upstream_messages
from opportunity_mcp.crm.plazbot_login import PlazbotLogin
from opportunity_mcp.crm.policy import CallPolicy, request
from opportunity_mcp.crm.result import Opportunity, WriteResult, number, read_opportunity, text
from opportunity_mcp.untrusted import quoted

HOSTS = {
    "https://api.plazbot.com": "Plazbot",
    "https://apieu.plazbot.com": "Plazbot (Europe)",
    "https://api.wabotify.com": "Wabotify (America)",
    "https://apieu.wabotify.com": "Wabotify (Europe)",
}


@dataclass(frozen=True, slots=True)
class NewOpportunity:
    """What `POST /api/opportunity` is given (the workspace is the account's)."""

    name: str
    description: str
    amount: float
    contact_id: str | None = None
    seller_id: str | None = None
    stage_id: str | None = None
    expiration_date: str | None = None  # YYYY-MM-DDTHH:MM:SS


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field to set: `field` is the upstream name (name, amount, stageId, …, customFields), and
    `custom_field` names the custom field when `field` is customFields."""

    opportunity_id: str
    field: str
    value: str | float
    custom_field: str | None = None


# Where our fields live in its opportunity object.
_READ_KEYS = {
    "code": "opportCode",
    "name": "name",
    "amount": "amount",
    "stage": "stageId",
    "contact": "contactId",
    "assignee": "assignedAgentId",
}
# Where each updatable field lives in the returned opportunity, to verify the change took.
_ECHO_KEYS = {
    "name": "name",
    "description": "description",
    "amount": "amount",
    "stageId": "stageId",
    "assignedAgentId": "assignedAgentId",
    "expirationDate": "expirationDate",
    "contactId": "contactId",
}


def _echo_key(change: FieldChange) -> str:
    return "customFields" if change.field == "customFields" else _ECHO_KEYS[change.field]


class PlazbotClient:
    """Writes to one Plazbot / Wabotify account through a shared pooled HTTP client."""

    def __init__(self, account: Account, wiring: Wiring) -> None:
        self._account = account
        self.http = wiring.http
        self.name = HOSTS.get(account.base_url, "Plazbot").split(" ")[0]
        # Built once: the headers of every request to this workspace (with an API key, all of them).
        self._base_headers = {
            "Authorization": f"Bearer {account.secret.get_secret_value()}",
            "x-workspace-id": account.target,
            "Content-Type": "application/json",
        }
        email = account.option("email")
        self._login = None if email is None else PlazbotLogin(self.http, self.name, email, account.secret)

    @property
    def account(self) -> Account:
        return self._account

    async def send(
        self,
        policy: CallPolicy,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """One request under the call's policy, with the API key or the login's token. A 401 on a
        token renews it once and sends again: the CRM refused the request, so nothing was written."""
        if self._login is None:
            return await self._request(policy, method, path, self._base_headers, params, body, idempotent)
        token = await self._login.token(policy)
        for attempt in (1, 2):
            headers = {**self._base_headers, "Authorization": f"Bearer {token}"}
            try:
                return await self._request(policy, method, path, headers, params, body, idempotent)
            except CrmAuthError as err:
                if err.status != 401 or attempt == 2:
                    raise
                token = await self._login.token(policy, stale=token)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request(
        self,
        policy: CallPolicy,
        method: str,
        path: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        idempotent: bool,
    ) -> Any:
        return await request(
            policy, self.http, self.name, method, path, headers=headers, params=params, body=body, idempotent=idempotent
        )

    async def create(self, new: NewOpportunity, policy: CallPolicy) -> WriteResult:
        """POST /api/opportunity."""
        workspace = self._account.target
        body: dict[str, Any] = {
            "workspaceId": workspace,
            "name": new.name,
            "description": new.description,
            "amount": new.amount,
        }
        for key, value in (
            ("contactId", new.contact_id),
            ("assignedComercialId", new.seller_id),
            ("stageId", new.stage_id),
            ("expirationDate", new.expiration_date),
        ):
            if value is not None:
                body[key] = value
        data = await self.send(policy, "POST", "/api/opportunity", body=body, idempotent=False)
        opportunity = self._opportunity(self._payload(data))
        return WriteResult(opportunity, created=True, account=workspace)

    async def update_field(self, change: FieldChange, policy: CallPolicy) -> WriteResult:
        """PUT /api/opportunity?id=&workspaceId= with `{"paramToUpdate": F, F: value}`.

        That one body satisfies both documented styles: the single-field style reads
        `paramToUpdate`, the multi-field style reads the field itself.
        """
        workspace, value = self._account.target, change.value
        body: dict[str, Any] = {"paramToUpdate": change.field}
        if change.field == "customFields":
            body["customFields"] = [{"name": change.custom_field, "value": str(value)}]
        else:
            body[change.field] = value
        params = {"id": change.opportunity_id, "workspaceId": workspace}
        data = await self.send(policy, "PUT", "/api/opportunity", params=params, body=body, idempotent=True)
        raw = self._payload(data, require_object=False)
        if _echo_key(change) not in raw:
            # The answer does not show the field: read the opportunity back to know it took.
            raw = {**raw, **await self._read_back(change.opportunity_id, workspace, policy)}
        warnings = self.shown(raw, change)
        opportunity = self._opportunity(raw, fallback_id=change.opportunity_id)
        return WriteResult(opportunity, created=False, account=workspace, warnings=warnings)

    async def _read_back(self, opportunity_id: str, workspace: str, policy: CallPolicy) -> Mapping[str, Any]:
        """The opportunity as it now is; {} when the read fails, so verification falls back to a warning."""
        try:
            return await self.fetch(opportunity_id, policy) or {}
        except CrmError:
            return {}

    async def fetch(self, opportunity_id: str, policy: CallPolicy) -> Mapping[str, Any] | None:
        """GET /api/opportunity/{id}: enveloped, a bare object or a bare one-item list; None when the
        CRM does not have it (404, `success: false`, or another id); raises when it cannot be read."""
        path, params = f"/api/opportunity/{segment(opportunity_id)}", {"workspaceId": self._account.target}
        try:
            data = await self.send(policy, "GET", path, params=params, idempotent=True)
        except CrmNotFound:
            return None
        if isinstance(data, dict) and "success" in data:
            if data.get("success") is not True:
                return None
            data = data.get("data")
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if isinstance(data, list):
            data = data[0] if len(data) == 1 else None
        return data if isinstance(data, dict) and text(data, "id") == opportunity_id else None

    def _payload(self, data: Any, *, require_object: bool = True) -> Mapping[str, Any]:
        """The opportunity object from a success envelope; raise for `success: false`."""
        if not isinstance(data, dict):
            raise CrmBadResponse(f"{self.name} answered with JSON that is not its envelope")
        success, code = data.get("success"), data.get("code")
        if success is False:
            if isinstance(code, int) and code >= 500:
                # A failure on its side: the write may have happened; its text is not for the agent.
                raise CrmUnavailable(f"{self.name} reported an internal failure (code {code})", status=code)
            if isinstance(code, int) and 400 <= code < 500:
                raise status_error(self.name, code, data, {})
            reasons = upstream_messages(data)
            said = f": {'; '.join(reasons)}" if reasons else ""
            raise CrmRejected(f"{self.name} reported a failure{said}")
        if success is not True:
            raise CrmBadResponse(f"{self.name} answered without its success flag")
        inner = data.get("data")
        if not isinstance(inner, dict):
            if require_object:
                raise CrmBadResponse(f"{self.name} reported success but sent no opportunity")
            inner = {}
        found = inner.get("opportunity")
        if not isinstance(found, dict):
            found = inner.get("oportunity")
        opp: dict[str, Any] = dict(found) if isinstance(found, dict) else {}
        if not text(opp, "id") and text(inner, "id"):
            opp["id"] = inner["id"]
        return opp

    def _opportunity(self, raw: Mapping[str, Any], fallback_id: str | None = None) -> Opportunity:
        missing = f"{self.name} reported success but sent no opportunity id"
        return read_opportunity(raw, _READ_KEYS, fallback_id=fallback_id, missing=missing)

    def shown(self, raw: Mapping[str, Any], change: FieldChange) -> tuple[str, ...]:
        """Refuse an 'OK' whose opportunity still shows another value; warn when it cannot tell."""
        field, value = change.field, change.value
        if field == "customFields":
            return self._verify_custom(raw, change)
        key = _echo_key(change)
        if key not in raw:
            return (f"{self.name} did not return {field}, so the change could not be verified",)
        shown = raw.get(key)
        if field == "amount":
            echoed = number(raw, key)
            same = echoed is not None and abs(echoed - float(value)) < 1e-6
        elif field == "expirationDate":
            verdict = _same_instant(shown, str(value))
            if verdict is None:
                return (f"{self.name} returned expirationDate in a form that could not be compared",)
            if not verdict:
                return (f"{self.name} shows expirationDate {quoted(str(shown), 32)}, not what was sent",)
            same = True
        else:
            same = shown == value
        if not same:
            raise CrmNotApplied(f"{self.name} answered OK but the opportunity still shows another {field}")
        return ()

    def _verify_custom(self, raw: Mapping[str, Any], change: FieldChange) -> tuple[str, ...]:
        items = raw.get("customFields")
        if not isinstance(items, list):
            return (f"{self.name} did not return custom fields, so the change could not be verified",)
        for item in items:
            if isinstance(item, dict) and item.get("name") == change.custom_field:
                if str(item.get("value")) != str(change.value):
                    raise CrmNotApplied(
                        f"{self.name} answered OK but custom field {change.custom_field} still shows another value"
                    )
                return ()
        raise CrmNotApplied(f"{self.name} answered OK but shows no custom field {change.custom_field}")


def _same_instant(shown: Any, sent: str) -> bool | None:
    """Whether the CRM's date shows what was sent: the day for a plain date, the instant for a
    date-time (compared in UTC). None when the CRM's value cannot be read as a date."""
    if not isinstance(shown, str):
        return None
    if sent.endswith("T00:00:00"):
        return shown[:10] == sent[:10]
    try:
        a = datetime.fromisoformat(shown.replace("Z", "+00:00"))
        b = datetime.fromisoformat(sent.replace("Z", "+00:00"))
    except ValueError:
        return None
    if (a.tzinfo is None) != (b.tzinfo is None):
        return a.replace(tzinfo=None) == b.replace(tzinfo=None)
    return a == b


FAMILY = Family(
    name="plazbot",
    label="Plazbot / Wabotify",
    default_url="https://api.plazbot.com",
    hosts=HOSTS,
    secret_key="api_key",  # noqa: S106 - the name of the setting, not a secret
    target_key="workspace_id",
    target_kind="workspace",
    options=("open_deals",),  # "warn" (default) or "refuse" a create for a contact with an open deal
    login=("email", "password"),
    connect=PlazbotClient,
)
