"""Plazbot / Wabotify (one backend): create an opportunity, update one field of it.

Contract (see the project README's "Upstream notes"): every call sends `Authorization: Bearer
<api key>` and `x-workspace-id`, equal to the workspace in the body or query. Answers are an
envelope `{success, code, errorCode, message, data}`; a 200 with `success: false` is a failure.
The update answer names the object `data.opportunity` or, in older deployments, `data.oportunity`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx2

from server.config import PLAZBOT_HOSTS, PlazbotAccount
from server.crm.errors import CrmBadResponse, CrmError, CrmNotApplied, CrmRejected, CrmUnavailable
from server.crm.http import status_error, upstream_messages
from server.crm.policy import CallPolicy, request
from server.crm.result import Opportunity, WriteResult, number, text
from server.models import CreateOpportunityArgs, UpdateOpportunityFieldArgs

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


def _echo_key(args: UpdateOpportunityFieldArgs) -> str:
    return "customFields" if args.field == "customFields" else _ECHO_KEYS[args.field]


class PlazbotClient:
    """Writes to one Plazbot / Wabotify account through a shared pooled HTTP client."""

    def __init__(self, account: PlazbotAccount, http: httpx2.AsyncClient) -> None:
        self.account = account
        self.http = http
        self.name = PLAZBOT_HOSTS.get(account.base_url, "Plazbot").split(" ")[0]

    def _headers(self, workspace: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.account.api_key.get_secret_value()}",
            "x-workspace-id": workspace,
            "Content-Type": "application/json",
        }

    async def create(self, args: CreateOpportunityArgs, policy: CallPolicy) -> WriteResult:
        """POST /api/opportunity."""
        workspace = args.workspaceId or self.account.workspace_id
        body: dict[str, Any] = {
            "workspaceId": workspace,
            "name": args.name,
            "description": args.description,
            "amount": args.amount,
        }
        for key in ("contactId", "assignedComercialId", "stageId", "expirationDate"):
            value = getattr(args, key)
            if value is not None:
                body[key] = value
        headers = self._headers(workspace)
        data = await request(
            policy, self.http, self.name, "POST", "/api/opportunity", headers=headers, body=body, idempotent=False
        )
        opportunity = self._opportunity(self._payload(data))
        return WriteResult(opportunity, created=True, account=workspace)

    async def update_field(
        self, args: UpdateOpportunityFieldArgs, value: str | float, policy: CallPolicy
    ) -> WriteResult:
        """PUT /api/opportunity?id=&workspaceId= with `{"paramToUpdate": F, F: value}`.

        That one body satisfies both documented styles: the single-field style reads
        `paramToUpdate`, the multi-field style reads the field itself.
        """
        workspace = args.workspaceId or self.account.workspace_id
        body: dict[str, Any] = {"paramToUpdate": args.field}
        if args.field == "customFields":
            body["customFields"] = [{"name": args.customFieldName, "value": str(value)}]
        else:
            body[args.field] = value
        headers, params = self._headers(workspace), {"id": args.opportunityId, "workspaceId": workspace}
        data = await request(
            policy,
            self.http,
            self.name,
            "PUT",
            "/api/opportunity",
            headers=headers,
            params=params,
            body=body,
            idempotent=True,
        )
        raw = self._payload(data, require_object=False)
        if _echo_key(args) not in raw:
            # The answer does not show the field: read the opportunity back to know it took.
            raw = {**raw, **await self._read_back(args.opportunityId, workspace, policy)}
        warnings = self._verify(raw, args, value)
        opportunity = self._opportunity(raw, fallback_id=args.opportunityId)
        return WriteResult(opportunity, created=False, account=workspace, warnings=warnings)

    async def _read_back(self, opportunity_id: str, workspace: str, policy: CallPolicy) -> Mapping[str, Any]:
        """GET /api/opportunity/{id}: enveloped, a bare object or a bare one-item list. {} when the
        read fails, so verification falls back to a warning."""
        headers, params = self._headers(workspace), {"workspaceId": workspace}
        try:
            data = await request(
                policy,
                self.http,
                self.name,
                "GET",
                f"/api/opportunity/{opportunity_id}",
                headers=headers,
                params=params,
                idempotent=True,
            )
        except CrmError:
            return {}
        if isinstance(data, dict) and "success" in data:
            if data.get("success") is not True:
                return {}
            data = data.get("data")
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if isinstance(data, list):
            data = data[0] if len(data) == 1 else None
        return data if isinstance(data, dict) and text(data, "id") == opportunity_id else {}

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
        opp_id = text(raw, "id") or fallback_id
        if opp_id is None:
            raise CrmBadResponse(f"{self.name} reported success but sent no opportunity id")
        return Opportunity(
            id=opp_id,
            code=text(raw, "opportCode"),
            name=text(raw, "name"),
            amount=number(raw, "amount"),
            stage=text(raw, "stageId"),
            contact=text(raw, "contactId"),
            assignee=text(raw, "assignedAgentId"),
        )

    def _verify(self, raw: Mapping[str, Any], args: UpdateOpportunityFieldArgs, value: str | float) -> tuple[str, ...]:
        """Refuse an 'OK' whose opportunity still shows another value; warn when it cannot tell."""
        field = args.field
        if field == "customFields":
            items = raw.get("customFields")
            if not isinstance(items, list):
                return (f"{self.name} did not return custom fields, so the change could not be verified",)
            for item in items:
                if isinstance(item, dict) and item.get("name") == args.customFieldName:
                    if str(item.get("value")) != str(value):
                        raise CrmNotApplied(
                            f"{self.name} answered OK but custom field {args.customFieldName} still shows another value"
                        )
                    return ()
            raise CrmNotApplied(f"{self.name} answered OK but shows no custom field {args.customFieldName}")
        key = _echo_key(args)
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
                return (f"{self.name} shows expirationDate {str(shown)[:32]}, not what was sent",)
            same = True
        else:
            same = shown == value
        if not same:
            raise CrmNotApplied(f"{self.name} answered OK but the opportunity still shows another {field}")
        return ()


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
