"""The schemas an agent sees: one pydantic model per tool's arguments, and the result envelope.

Argument names are the upstream camelCase names, so the agent, the CRM docs and the CRM's own error
messages use the same words.
Checks that only matter at call time live in validators, so they cost the schema no tokens; the
published form of these models is made in `schema`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationInfo

from opportunity_mcp.custom_values import CustomField, json_argument
from opportunity_mcp.dates import iso_date
from opportunity_mcp.numbers import AmountError, NumberFormat, amount
from opportunity_mcp.phones import PhoneError, e164
from opportunity_mcp.untrusted import control_characters
from opportunity_mcp.values import ID_RULE, is_email, is_id


@dataclass(frozen=True, slots=True)
class Reading:
    """How the account a call writes to reads what people write: its number format and the country
    of a phone given without its code. Passed as the validation context; unknown: strict reading."""

    number_format: NumberFormat | None = None
    default_country: str | None = None


def _reading(info: ValidationInfo | None) -> Reading:
    found = info.context if info is not None else None
    return found if isinstance(found, Reading) else Reading()


def _check_id(value: str) -> str:
    if not is_id(value):
        raise ValueError(f"must be an id as the CRM gave it ({ID_RULE})")
    return value


def _text_or_number(value: Any) -> Any:
    # Checked before the union: otherwise a list is refused once per branch, in two confusing lines.
    if isinstance(value, bool):
        raise ValueError("must be text or a number, not true/false")
    if not isinstance(value, str | int | float):
        raise ValueError("must be text or a number (one value, not a list or an object)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if isinstance(value, int) and abs(value) >= 10**15:
        raise ValueError("must be text, or a number below 10^15")
    return value


def _money(value: Any, info: ValidationInfo) -> float:
    try:
        return amount(value, _reading(info).number_format)
    except AmountError as exc:
        raise ValueError(str(exc)) from None


def checked_text(value: str, limit: int, *, allow: str = "") -> str:
    """Text of 1 to `limit` characters with no control characters (those in `allow` aside)."""
    if not value or len(value) > limit:
        raise ValueError(f"must be text of 1 to {limit} characters")
    if control_characters(value, allow=allow):
        kept = " (line breaks and tabs aside)" if allow else ""
        raise ValueError(f"must not contain control or line-separator characters{kept}")
    return value


def _text(limit: int, *, allow: str = "") -> AfterValidator:
    return AfterValidator(lambda value: checked_text(value, limit, allow=allow))


# Constraints live in validators, not in the published schema: they cost the agent no tokens,
# and the refusal says what is allowed.
Id = Annotated[str, AfterValidator(_check_id)]
# Read before pydantic's own float parsing, which would take "1.200" as 1.2 and "1_000" as 1000.
Money = Annotated[float, BeforeValidator(_money), Field(json_schema_extra={"minimum": 0})]
Name = Annotated[str, _text(200)]
IdemKey = Annotated[str, _text(200)]
_KEY_HELP = "Triggering message id"
# The human alternative to the id argument before it: give one of the pair.
PHONE_HELP = "Or phone (+code)"
EMAIL_HELP = "Or email"
_SELLER_HELP = "Or seller email"
_STAGE_HELP = "Or stage name"
_DUP_HELP = "Even if a duplicate"
DryRun = Annotated[StrictBool, Field(description="Preview only")]
Confirmation = Annotated[str | None, _text(200), Field(description="Code from a preview")]
IsoDate = Annotated[str, Field(json_schema_extra={"format": "date"}), AfterValidator(iso_date)]


def _phone(value: str, info: ValidationInfo) -> str:
    try:
        return e164(value, _reading(info).default_country)
    except PhoneError as exc:
        raise ValueError(str(exc)) from None


def _email(value: str) -> str:
    if not is_email(value) or control_characters(value):
        raise ValueError("must be an email address")
    return value


Phone = Annotated[str, AfterValidator(_phone)]  # kept as E.164: +51912345678
Email = Annotated[str, AfterValidator(_email)]
OpportunityStatus = Literal["open", "won", "lost", "abandoned"]


# The human alternatives to id arguments: resolved to ids before a write, never part of one.
HUMAN_ARGUMENTS = frozenset(
    {"contactPhone", "contactEmail", "assigneeEmail", "stageName", "pipelineName", "lostReasonName"}
)
A = TypeVar("A", bound=BaseModel)


def with_ids(args: A, ids: Mapping[str, Any]) -> A:
    """The arguments as ids only: the human ones emptied, the ids they stood for filled in, so the
    same deal by phone or by id has the same arguments."""
    human = dict.fromkeys(HUMAN_ARGUMENTS & type(args).model_fields.keys())
    return args.model_copy(update={**human, **ids})


class ToolArgs(BaseModel):
    """Base for tool arguments: unknown arguments are refused, text is trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class CreateOpportunityArgs(ToolArgs):
    name: Annotated[Name, Field(description="Deal name")]
    description: Annotated[str, _text(5000, allow="\n\t"), Field(description="What is sold")]
    amount: Annotated[Money, Field(description="Value, no currency sign")]
    contactId: Annotated[Id | None, Field(description="Contact id")] = None
    contactPhone: Annotated[Phone | None, Field(description=PHONE_HELP)] = None
    contactEmail: Annotated[Email | None, Field(description=EMAIL_HELP)] = None
    assignedComercialId: Annotated[Id | None, Field(description="Seller user id")] = None
    assigneeEmail: Annotated[Email | None, Field(description=_SELLER_HELP)] = None
    stageId: Annotated[Id | None, Field(description="Stage id")] = None
    stageName: Annotated[Name | None, Field(description=_STAGE_HELP)] = None
    expirationDate: Annotated[IsoDate | None, Field(description="Close date")] = None
    workspaceId: Annotated[Id | None, Field(description="Default: configured")] = None
    dryRun: DryRun = False
    confirmation: Confirmation = None
    idempotencyKey: Annotated[IdemKey | None, Field(description=_KEY_HELP)] = None
    allowDuplicate: Annotated[StrictBool, Field(description=_DUP_HELP)] = False


UpdatableField = Literal[
    "name", "description", "amount", "stageId", "assignedAgentId", "expirationDate", "contactId", "customFields"
]


_DEAL_NAME_HELP = "Name, with a contact"


class UpdateOpportunityFieldArgs(ToolArgs):
    opportunityId: Annotated[Id | None, Field(description="Deal id, or its contact")] = None
    contactId: Annotated[Id | None, Field(description="Or its contact id")] = None
    contactPhone: Annotated[Phone | None, Field(description=PHONE_HELP)] = None
    contactEmail: Annotated[Email | None, Field(description=EMAIL_HELP)] = None
    opportunityName: Annotated[Name | None, Field(description=_DEAL_NAME_HELP)] = None
    field: Annotated[UpdatableField, Field(description="Field to change")]
    value: Annotated[
        str | float,
        BeforeValidator(_text_or_number),
        Field(description="amount: number; dates: YYYY-MM-DD; ids: or name/email/+phone"),
    ]
    customFieldName: Annotated[str | None, _text(100), Field(description="When field is customFields")] = None
    workspaceId: Annotated[Id | None, Field(description="Default: configured")] = None
    dryRun: DryRun = False
    confirmation: Confirmation = None

    def checked_value(self, reading: Reading | None = None) -> str | float:
        """The value validated and normalised for `field` (raises ValueError naming what is allowed)."""
        value, reading = self.value, reading or Reading()
        if self.field == "amount":
            try:
                return amount(value, reading.number_format)
            except AmountError as exc:
                raise ValueError(f"value: for amount, {exc}") from None
        text = value if isinstance(value, str) else _plain_number(value)
        text = text.strip()
        if self.field == "expirationDate":
            try:
                return iso_date(text)
            except ValueError as exc:
                raise ValueError(f"value: for expirationDate, {exc}") from None
        if self.field in ("stageId", "assignedAgentId", "contactId"):
            try:
                return reference(self.field, text, reading)[1]
            except ValueError as exc:
                raise ValueError(f"value: for {self.field}, {exc}") from None
        limit, allow = (200, "") if self.field == "name" else (5000, "\n\t")
        try:
            return checked_text(text, limit, allow=allow)
        except ValueError as exc:
            raise ValueError(f"value: for {self.field}, {exc}") from None


Reference = Literal["id", "name", "email", "phone"]


def reference(field: str, text: str, reading: Reading | None = None) -> tuple[Reference, str]:
    """What an update's value for stageId, assignedAgentId or contactId is: an id, or a stage's name,
    a seller's email, a contact's phone (starting with + or 00) or email; normalised."""
    if field == "contactId" and text.startswith(("+", "00")):
        try:
            return "phone", e164(text, (reading or Reading()).default_country)
        except PhoneError as exc:
            raise ValueError(str(exc)) from None
    if field in ("contactId", "assignedAgentId") and "@" in text:
        return "email", _email(text)
    if field == "contactId" and text.isdigit() and len(text) >= 8:
        # Digits alone read as a phone without its + or as an id: refused, not guessed.
        raise ValueError("digits alone could be a phone or an id: give a phone with + and its country code")
    if field == "stageId" and not (text.isascii() and " " not in text and any(c.isdigit() or c in "-_" for c in text)):
        if not text or len(text) > 200 or control_characters(text):
            raise ValueError("must be a stage id or a stage's name (1 to 200 characters, no control characters)")
        return "name", text  # one ASCII word with a digit, '-' or '_' is an id; anything else a name
    try:
        return "id", _check_id(text)
    except ValueError:
        other = {"contactId": ", a phone (+…) or an email", "assignedAgentId": " or a seller's email"}
        raise ValueError(f"must be an id as the CRM gave it{other.get(field, '')}") from None


def _plain_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _at_most(limit: int) -> AfterValidator:
    def check(items: list[str] | None) -> list[str] | None:
        if items is not None and len(items) > limit:
            raise ValueError(f"must have at most {limit} items")
        return items

    return AfterValidator(check)


def _refuse_all(value: Any) -> Any:
    if value == "all":
        raise ValueError("'all' is a search filter; a write takes open, won, lost or abandoned")
    return value


class UpsertOpportunityArgs(ToolArgs):
    id: Annotated[Id | None, Field(description="Deal id; omit to create")] = None
    name: Annotated[Name | None, Field(description="Deal name")] = None
    status: Annotated[OpportunityStatus | None, BeforeValidator(_refuse_all), Field(description="Deal status")] = None
    pipelineStageId: Annotated[Id | None, Field(description="Stage id")] = None
    stageName: Annotated[Name | None, Field(description=_STAGE_HELP)] = None
    monetaryValue: Annotated[Money | None, Field(description="Deal value")] = None
    assignedTo: Annotated[Id | None, Field(description="Owner user id")] = None
    assigneeEmail: Annotated[Email | None, Field(description=_SELLER_HELP)] = None
    lostReasonId: Annotated[Id | None, Field(description="With status lost")] = None
    lostReasonName: Annotated[Name | None, Field(description="Or lost reason name")] = None
    contactId: Annotated[Id | None, Field(description="Contact id")] = None
    contactPhone: Annotated[Phone | None, Field(description=PHONE_HELP)] = None
    contactEmail: Annotated[Email | None, Field(description=EMAIL_HELP)] = None
    followers: Annotated[
        list[Id] | None,
        json_argument("["),
        _at_most(50),
        Field(description="Follower user ids"),
    ] = None
    followersActionType: Annotated[Literal["add", "remove"], Field(description="Followers action")] = "add"
    isRemoveAllFollowers: Annotated[StrictBool, Field(description="Clear followers first")] = False
    pipelineId: Annotated[Id | None, Field(description="Default: configured")] = None
    pipelineName: Annotated[Name | None, Field(description="Or pipeline name")] = None
    locationId: Annotated[Id | None, Field(description="Default: configured")] = None
    opportunityName: Annotated[Name | None, Field(description=_DEAL_NAME_HELP)] = None
    customFields: CustomField = None
    dryRun: DryRun = False
    confirmation: Confirmation = None
    idempotencyKey: Annotated[IdemKey | None, Field(description=_KEY_HELP)] = None
    allowDuplicate: Annotated[StrictBool, Field(description=_DUP_HELP)] = False
