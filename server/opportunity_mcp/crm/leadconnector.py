"""LeadConnector (HighLevel, Leadway and other white labels): `POST /opportunities/upsert`.

Two body shapes are documented and the server refuses any property its shape does not know
(a 422 "property X should not exist"), so a body is always exactly one of them:

- "followers" (the spec since 2026-05): pipelineId, locationId, followers, isRemoveAllFollowers and
  followersActionType required; id, name, status, pipelineStageId, monetaryValue, assignedTo,
  lostReasonId optional; no contactId.
- "contact" (the spec until 2025-08): pipelineId, locationId, contactId required; name, status,
  pipelineStageId, monetaryValue, assignedTo optional; no id, lostReasonId or followers.

The answer is 200 `{opportunity, new}`; `new` says whether it created or updated.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from opportunity_mcp.crm.base import Account, Family, Wiring
from opportunity_mcp.crm.errors import (
    CrmAuthError,
    CrmBadResponse,
    CrmInvalid,
    CrmTransportError,
    CrmUnavailable,
)
from opportunity_mcp.crm.http import segment, send
from opportunity_mcp.crm.policy import CallPolicy, with_retries
from opportunity_mcp.crm.result import Opportunity, WriteResult, read_opportunity, text

API_VERSION = "2021-07-28"
SHAPE_TTL = 30.0  # seconds a location's learned upsert shape is trusted before it is read again
UpsertShape = Literal["followers", "contact"]
# Where our fields live in its opportunity object.
_READ_KEYS = {
    "name": "name",
    "amount": "monetaryValue",
    "stage": "pipelineStageId",
    "status": "status",
    "contact": "contactId",
    "assignee": "assignedTo",
}


@dataclass(frozen=True, slots=True)
class Upsert:
    """What `POST /opportunities/upsert` is given, beside the location and pipeline."""

    id: str | None = None
    name: str | None = None
    status: str | None = None
    stage_id: str | None = None
    value: float | None = None
    assigned_to: str | None = None
    lost_reason_id: str | None = None
    contact_id: str | None = None
    followers: tuple[str, ...] | None = None
    followers_action: Literal["add", "remove"] = "add"
    remove_all_followers: bool = False

    def common(self) -> tuple[tuple[str, Any], ...]:
        """The fields both shapes carry, under their upstream names."""
        return (
            ("name", self.name),
            ("status", self.status),
            ("pipelineStageId", self.stage_id),
            ("monetaryValue", self.value),
            ("assignedTo", self.assigned_to),
        )


def fits_contact(args: Upsert) -> bool:
    """Whether the contact-keyed shape carries everything this call asks for."""
    return (
        args.contact_id is not None
        and args.id is None
        and args.followers is None
        and args.lost_reason_id is None
        and not args.remove_all_followers
    )


def choose_shape(args: Upsert, learned: str | None = None) -> UpsertShape:
    """The shape this location is known to take; until known, the contact-keyed shape when the call
    fits it (it is about a contact, not an id), else the current spec's shape."""
    if learned in ("followers", "contact"):
        return learned  # type: ignore[return-value]
    return "contact" if fits_contact(args) else "followers"


def carry_problem(args: Upsert, shape: UpsertShape) -> CrmInvalid | None:
    """Why `shape` cannot carry this call without losing something the agent asked for, if it cannot."""
    if shape == "followers" and args.contact_id is not None and args.id is None:
        return CrmInvalid(
            f"this location's upsert has no contactId, so a new opportunity cannot be linked to contact "
            f"{args.contact_id} this way; call again without contactId to create it unlinked, or pass the id of "
            "the contact's existing opportunity",
            status=422,
        )
    if shape == "contact" and not fits_contact(args):
        return CrmInvalid(
            "this location's upsert is the contact-keyed form: it needs contactId and takes no id, lostReasonId "
            "or followers; call again with contactId and without those",
            status=422,
        )
    return None


def refused_shape(err: CrmInvalid, sent: UpsertShape) -> UpsertShape | None:
    """The shape a 422 says this location takes instead of the one sent, if it says so."""
    said = " ".join(err.details).lower()
    if err.status != 422:
        return None
    if sent == "contact" and ("property contactid should not exist" in said or "followers" in said):
        return "followers"
    if sent == "followers" and (
        "property followers should not exist" in said
        or "contactid should not be empty" in said
        or "contactid must be" in said
    ):
        return "contact"
    return None


def upsert_body(
    args: Upsert, *, location: str, pipeline: str, shape: UpsertShape
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The request body in `shape`, and a warning for every argument that shape cannot carry."""
    body: dict[str, Any] = {"pipelineId": pipeline, "locationId": location}
    warnings: list[str] = []
    if shape == "followers":
        if args.id is not None:
            body["id"] = args.id
        body["followers"] = list(args.followers or [])
        body["isRemoveAllFollowers"] = args.remove_all_followers
        body["followersActionType"] = args.followers_action
        if args.contact_id is not None:
            warnings.append("contactId was not sent: this upsert form has no contactId (the contact stays as it is)")
    else:
        body["contactId"] = args.contact_id
    for key, value in args.common():
        if value is not None:
            body[key] = value
    if shape == "followers" and args.lost_reason_id is not None:
        body["lostReasonId"] = args.lost_reason_id
    return body, tuple(warnings)


def opportunity_of(raw: Mapping[str, Any], fallback_id: str | None) -> Opportunity:
    """The opportunity of an answer's `opportunity` object."""
    missing = "LeadConnector answered without an opportunity id"
    return read_opportunity(raw, _READ_KEYS, fallback_id=fallback_id, missing=missing, ids=("id", "_id"))


class LeadConnectorClient:
    """Upserts into one LeadConnector location through a shared pooled HTTP client."""

    name = "LeadConnector"

    def __init__(self, account: Account, wiring: Wiring) -> None:
        self._account = account
        self.http = wiring.http
        self.limiter = wiring.limiter
        self.shapes = wiring.shapes
        self._learned_at: dict[str, tuple[str | None, float]] = {}
        self._headers = {
            "Authorization": f"Bearer {account.secret.get_secret_value()}",
            "Version": API_VERSION,
            "Content-Type": "application/json",
        }

    @property
    def account(self) -> Account:
        return self._account

    @property
    def default_pipeline(self) -> str | None:
        return self._account.option("pipeline_id")

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
        """One request under the call's policy; every attempt waits its turn in the location's rate
        limit (LeadConnector counts requests per location, lookups included)."""
        location = self._account.target

        async def attempt(time_left: float) -> Any:
            ticket = await self.limiter.acquire(location, policy)
            time_left, rate = min(time_left, policy.remaining()), dict[str, str]()
            try:
                return await send(
                    self.http,
                    self.name,
                    method,
                    path,
                    headers=self._headers,
                    params=params,
                    body=body,
                    time_left=time_left,
                    rate=rate,
                )
            finally:
                # A late request is counted again as of its answer; every answer's X-RateLimit-*
                # tightens the window, not only a 429's.
                await self.limiter.done(location, ticket, rate)

        return await with_retries(policy, attempt, idempotent=idempotent)

    async def pipeline_of(self, opportunity_id: str, policy: CallPolicy) -> str | None:
        """The pipeline an opportunity is in (GET /opportunities/{id}); None when it cannot be read
        (no read scope, no answer). An id the CRM does not know raises: nothing is written."""
        try:
            data = await self.send(policy, "GET", f"/opportunities/{segment(opportunity_id)}", idempotent=True)
        except (CrmAuthError, CrmTransportError, CrmUnavailable, CrmBadResponse):
            return None
        found = data.get("opportunity") if isinstance(data, dict) else None
        return text(found, "pipelineId") if isinstance(found, dict) else None

    async def upsert(self, args: Upsert, *, pipeline: str | None, policy: CallPolicy) -> WriteResult:
        """Upsert in the shape this location takes, refusing before sending what that shape cannot
        carry. A 422 that names the other shape teaches the location's shape (nothing was written).
        Without `pipeline`, an update by id stays in the deal's own pipeline."""
        location = self._account.target
        notes: tuple[str, ...] = ()
        if pipeline is None:
            # An update by id: keep the deal in its own pipeline rather than move it to the default.
            assert args.id is not None
            pipeline = await self.pipeline_of(args.id, policy)
            if pipeline is None:
                pipeline = self.default_pipeline
                if pipeline is None:
                    raise CrmInvalid(
                        "could not read the opportunity's pipeline and none is configured; pass pipelineId"
                    )
                notes = ("could not read the opportunity's pipeline; sent the configured one",)
        shape = choose_shape(args, await self._learned(location))
        problem = carry_problem(args, shape)
        if problem is not None:
            raise problem
        try:
            result = await self._upsert(args, location, pipeline, shape, policy)
            return WriteResult(result.opportunity, result.created, result.account, (*result.warnings, *notes))
        except CrmInvalid as err:
            other = refused_shape(err, shape)
            if other is None:
                raise
            # Nothing was written on that 422. Remember what the location takes, so the next call goes
            # straight to it; this one is not resent, since the other shape cannot carry it whole (the
            # contact-keyed shape has no id, followers or lostReasonId; the current one no contactId).
            await self._learn(location, other)
            problem = carry_problem(args, other)
            assert problem is not None
            raise CrmInvalid(
                f"{problem.message} (learned from its 422: {'; '.join(err.details[:2])})", status=422
            ) from None

    async def learned_shape(self) -> str | None:
        """The upsert form this location is known to take ("followers", "contact"), if known."""
        return await self._learned(self._account.target)

    async def _learned(self, location: str) -> str | None:
        """The shape learned for `location`, read from the shared memory at most every SHAPE_TTL
        seconds. A shape another replica learns meanwhile costs this one at most one 422 (on which
        nothing is written) before it is known here too."""
        if self.shapes is None:
            return None
        now = time.monotonic()
        cached = self._learned_at.get(location)
        if cached is not None and cached[1] > now:
            return cached[0]
        shape = await self.shapes.learned_shape(location)
        self._learned_at[location] = (shape, now + SHAPE_TTL)
        return shape

    async def _learn(self, location: str, shape: UpsertShape) -> None:
        if self.shapes is not None:
            await self.shapes.learn_shape(location, shape)
            self._learned_at[location] = (shape, time.monotonic() + SHAPE_TTL)

    async def _upsert(
        self, args: Upsert, location: str, pipeline: str, shape: UpsertShape, policy: CallPolicy
    ) -> WriteResult:
        body, warnings = upsert_body(args, location=location, pipeline=pipeline, shape=shape)
        # An upsert that names its opportunity is idempotent; one without id may create.
        data = await self.send(policy, "POST", "/opportunities/upsert", body=body, idempotent=args.id is not None)
        if not isinstance(data, dict) or not isinstance(data.get("opportunity"), dict):
            raise CrmBadResponse(f"{self.name} answered without the opportunity it upserted")
        created = data.get("new")
        if not isinstance(created, bool):
            raise CrmBadResponse(f"{self.name} did not say whether it created or updated (no 'new')")
        opportunity = opportunity_of(data["opportunity"], fallback_id=args.id)
        return WriteResult(opportunity, created=created, account=location, warnings=warnings)


FAMILY = Family(
    name="leadconnector",
    label="LeadConnector (HighLevel, Leadway)",
    default_url="https://services.leadconnectorhq.com",
    hosts={"https://services.leadconnectorhq.com": "LeadConnector"},
    secret_key="token",  # noqa: S106 - the name of the setting, not a secret
    target_key="location_id",
    target_kind="location",
    options=("pipeline_id",),
    connect=LeadConnectorClient,
)
