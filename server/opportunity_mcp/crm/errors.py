"""What can go wrong talking to a CRM, as exceptions that carry a message fit for the agent.

    CrmError                      base; `.message` is safe to show (no token, header or raw body)
    ├── CrmRejected               the CRM answered and refused (4xx, or Plazbot `success: false`)
    │   ├── CrmAuthError          401 / 403: the configured credentials are wrong or lack a scope
    │   ├── CrmNotFound           404: an id in the request does not exist
    │   ├── CrmInvalid            400 / 422: a value was refused; `.details` lists the CRM's reasons
    │   ├── CrmNotApplied         answered OK, but the opportunity it returned does not show the change
    │   └── CrmRateLimited        429: not processed; `.retry_after` seconds when the CRM said
    ├── CrmUnavailable            5xx: the CRM failed; a write may or may not have happened
    ├── CrmBadResponse            an answer that is not the JSON the contract describes
    └── CrmTransportError         no usable answer at all
        ├── CrmConnectError       could not connect: the request was never sent
        │   └── CrmNotSent        the call's time budget ran out before it was sent
        └── CrmNoAnswer           sent, then timed out or the connection dropped: outcome unknown

`outcome_known` tells whether the CRM surely did not apply the write; it is False where the
request may have reached the CRM and been applied (5xx, timeouts, dropped connections).
"""

from __future__ import annotations


class CrmError(Exception):
    """Base class. `message` is plain words for the agent; `status` is the HTTP status if any."""

    outcome_known = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class CrmRejected(CrmError):
    """The CRM answered and refused: nothing was written."""


class CrmAuthError(CrmRejected):
    """The credentials were refused (401) or lack permission (403)."""


class CrmNotFound(CrmRejected):
    """Something the request names does not exist."""


class CrmInvalid(CrmRejected):
    """A value was refused. `details` holds the CRM's own reasons, one per item."""

    def __init__(self, message: str, *, status: int | None = None, details: tuple[str, ...] = ()) -> None:
        super().__init__(message, status=status)
        self.details = details


class CrmNotApplied(CrmRejected):
    """The CRM said the update succeeded, yet the opportunity it returned still shows the old value."""


class CrmRateLimited(CrmRejected):
    """Too many requests; the CRM did not process this one."""

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class CrmUnavailable(CrmError):
    """The CRM failed with a 5xx. A write may have been applied before it failed."""

    outcome_known = False


class CrmBadResponse(CrmError):
    """The CRM answered, but not with the JSON its contract describes."""

    outcome_known = False


class CrmTransportError(CrmError):
    """No usable answer came back."""


class CrmConnectError(CrmTransportError):
    """The connection could not be made, so the request was never sent."""


class CrmNotSent(CrmConnectError):
    """The call's time budget ran out before the request left: nothing was sent."""


class CrmNoAnswer(CrmTransportError):
    """The request was sent but no answer came: timed out or the connection dropped."""

    outcome_known = False
    # Still being worked on at the CRM, maybe (a time-out): a create is then not sent again on the
    # spot, however absent it looks, only read back (and reconciled later).
    slow = False


class CrmTimedOut(CrmNoAnswer):
    """The request was sent and its answer did not come in time."""

    slow = True
