"""The sandbox's memory: seeded accounts, the opportunities written so far, the requests received,
the faults waiting to be injected and the upstream variants it plays. Thread-safe, because tests
read it from another thread than the one serving HTTP."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from opportunity_mcp.sandbox.rate import BurstLimit

PLAZBOT_KEY = "sandbox-plazbot-key"
# The seeded Plazbot user that may log in (POST /api/user/login) instead of using the key.
PLAZBOT_EMAIL = "ventas@sandbox.example"
PLAZBOT_PASSWORD = "sandbox-password"  # noqa: S105 - a sandbox credential, not a secret
LEADCONNECTOR_TOKEN = "sandbox-leadconnector-token"  # noqa: S105 - a sandbox credential, not a secret
PLAZBOT_WORKSPACE = "ws-sandbox"
LC_LOCATION = "loc-sandbox"
LC_PIPELINE = "pipe-sandbox"

UpdateStyle = Literal["param", "fields"]
UpsertShapes = Literal["followers", "contact", "either"]
GetShape = Literal["envelope", "bare"]
LoginShape = Literal["user", "expires"]
NotFound = Literal["empty", "404", "failure"]
WorkspaceShape = Literal["states", "phases"]
Drop = Literal["before", "after"]


@dataclass
class Seed:
    """Ids that exist in the sandbox, so that an unknown id gets the CRM's not-found answer."""

    workspaces: tuple[str, ...] = (PLAZBOT_WORKSPACE, "ws-sandbox-2")
    plazbot_contacts: tuple[str, ...] = ("contact-456", "contact-457", "contact-458")
    plazbot_users: tuple[str, ...] = ("user-123", "user-124")
    plazbot_stages: tuple[tuple[str, str], ...] = (
        ("stage-new", "Nuevo"),
        ("stage-qualified", "Calificado"),
        ("stage-proposal", "Propuesta"),
        ("stage-won", "Ganado"),
        ("stage-lost", "Perdido"),
        ("stage-negotiation", "Negociación"),
        # Differs from the one above only by accent and case: a name that matches both is ambiguous.
        ("stage-negotiation-old", "NEGOCIACION"),
    )
    # Names, phones (digits with country code) and emails of the seeded contacts and sellers. Two
    # contacts share one phone, as a family's WhatsApp number does.
    plazbot_people: dict[str, tuple[str, str, str | None]] = field(
        default_factory=lambda: {
            "contact-456": ("Maria Lopez", "51912345678", "maria@empresa.pe"),
            "contact-457": ("Mario López", "51987654321", None),
            "contact-458": ("Marta Lopez", "51987654321", "marta@empresa.pe"),
        }
    )
    plazbot_sellers: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {"user-123": ("Juan Pérez", "juan@acme.com"), "user-124": ("Ana Ruiz", "ana@acme.com")}
    )
    locations: tuple[str, ...] = (LC_LOCATION,)
    lc_pipelines: dict[str, tuple[tuple[str, str], ...]] = field(
        default_factory=lambda: {
            LC_PIPELINE: (
                ("7915dedc-8f18-44d5-8bc3-77c04e994a10", "New lead"),
                ("0c4f3b9e-2f7a-4a51-9d1e-5b8a1c2d3e4f", "Contacted"),
                ("5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d", "Proposal sent"),
                ("9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "Closed"),
            ),
            "pipe-renewals": (
                ("3b2a1c0d-4e5f-4a6b-9c7d-8e9f0a1b2c3d", "Renewal due"),
                ("6c5b4a39-2817-4f6e-8d5c-4b3a29180f7e", "Renewed"),
            ),
        }
    )
    lc_contacts: tuple[str, ...] = ("LiKJ2vnRg5ETM8Z19K7", "contact-lc-1", "contact-lc-2")
    lc_users: tuple[str, ...] = ("082goXVW3lIExEQPOnd3", "user-lc-1")
    lc_lost_reasons: tuple[str, ...] = ("lost-price", "lost-timing")
    lc_people: dict[str, tuple[str, str, str | None]] = field(
        default_factory=lambda: {
            "LiKJ2vnRg5ETM8Z19K7": ("Maria Lopez", "+51912345678", "maria@empresa.pe"),
            "contact-lc-1": ("Carlos Díaz", "+14155550100", "carlos@example.com"),
            "contact-lc-2": ("Lucía Gómez", "+34600111222", None),
        }
    )
    lc_sellers: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {
            "082goXVW3lIExEQPOnd3": ("Juan Pérez", "juan@acme.com"),
            "user-lc-1": ("Ana Ruiz", "ana@acme.com"),
        }
    )
    lc_lost_reason_names: dict[str, str] = field(
        default_factory=lambda: {"lost-price": "Precio", "lost-timing": "Timing"}
    )
    lc_pipeline_names: dict[str, str] = field(
        default_factory=lambda: {LC_PIPELINE: "Ventas", "pipe-renewals": "Renovaciones"}
    )
    lc_company: str = "company-sandbox"


@dataclass
class Fault:
    """One injected misbehaviour for requests to `route` ('*' for any), used `times` times.

    - status: answer with this status (and `body`, `content_type`, `headers`) instead of the real
      answer; the write is not applied unless `apply` is set.
    - drop: close the connection without an answer, 'before' applying the write or 'after' it.
    - delay: seconds to wait before answering (after applying the write, if it is applied).
    - lag: drop the connection at once, and apply the write this many seconds later (a write still
      under way inside the CRM when its answer was lost).
    """

    route: str = "*"
    status: int | None = None
    body: str | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: Drop | None = None
    lag: float = 0.0
    apply: bool = False
    times: int = 1


@dataclass
class Options:
    """Which documented upstream variant the sandbox plays."""

    plazbot_update_style: UpdateStyle = "param"
    upsert_shapes: UpsertShapes = "either"
    plazbot_get_shape: GetShape = "envelope"
    # The login answer: data.token with data.user (Plazbot's pages) or with data.expiresIn (Wabotify's).
    plazbot_login_shape: LoginShape = "user"
    plazbot_token_seconds: float = 3600.0
    # What a Plazbot contact search answers when nothing matches: an empty list (its pages), a 404
    # (the Wabotify copy), or `success: false`.
    plazbot_not_found: NotFound = "empty"
    # The workspace: an array with masterOfStates (Plazbot's page) or one object with phases (Wabotify's).
    plazbot_workspace_shape: WorkspaceShape = "states"


@dataclass(frozen=True)
class Recorded:
    """One request as the sandbox received it."""

    route: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return uuid.uuid4().hex[:24]


def _default_fields() -> list[dict[str, Any]]:
    from opportunity_mcp.sandbox.custom_fields import default_fields  # it builds on this module

    return default_fields()


class SandboxState:
    def __init__(
        self,
        *,
        plazbot_key: str = PLAZBOT_KEY,
        leadconnector_token: str = LEADCONNECTOR_TOKEN,
        seed: Seed | None = None,
        options: Options | None = None,
        lc_burst: int = 100,
    ) -> None:
        self.plazbot_key = plazbot_key
        self.workspace_keys: dict[str, str] = {}
        self.leadconnector_token = leadconnector_token
        self.seed = seed or Seed()
        self.options = options or Options()
        self.lock = threading.RLock()
        self.plazbot: dict[str, dict[str, Any]] = {}
        self.leadconnector: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self._codes: dict[tuple[str, int], int] = {}
        self.plazbot_password = PLAZBOT_PASSWORD
        self.plazbot_tokens: dict[str, float] = {}  # token → when it expires (time.monotonic)
        self.lc_missing_scopes: set[str] = set()  # scopes the LeadConnector token lacks (403)
        self.lc_fields = _default_fields()  # opportunity custom field definitions
        self.lc_burst = BurstLimit(lc_burst)  # 100 per 10 s, as LeadConnector documents

    def reset(self) -> None:
        """Forget every opportunity, request and fault, and play the default variants again."""
        with self.lock:
            self.plazbot.clear()
            self.leadconnector.clear()
            self.requests.clear()
            self.faults.clear()
            self.workspace_keys.clear()
            self._codes.clear()
            self.plazbot_tokens.clear()
            self.lc_missing_scopes.clear()
            self.lc_fields = _default_fields()
            self.lc_burst.reset()
            self.options = Options()

    def issue_token(self) -> str:
        token = "pzt-" + uuid.uuid4().hex
        with self.lock:
            self.plazbot_tokens[token] = time.monotonic() + self.options.plazbot_token_seconds
        return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.plazbot_tokens.get(token)
        return expires is not None and time.monotonic() < expires

    def expire_tokens(self) -> None:
        """What a server restart upstream, or a revoked session, looks like: every token now gets 401."""
        with self.lock:
            self.plazbot_tokens.clear()

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, route: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.route in ("*", route):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(self, entry: Recorded) -> None:
        with self.lock:
            self.requests.append(entry)

    def requests_to(self, route: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.route == route]

    def next_code(self, workspace: str) -> str:
        """Plazbot's human code, OPP-YYYY-NNNN, counted per workspace and year."""
        year = datetime.now(UTC).year
        with self.lock:
            count = self._codes.get((workspace, year), 0) + 1
            self._codes[(workspace, year)] = count
        return f"OPP-{year}-{count:04d}"

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "plazbot": [dict(o) for o in self.plazbot.values()],
                "leadconnector": [dict(o) for o in self.leadconnector.values()],
                "requests": len(self.requests),
                "faults": len(self.faults),
                "lc_peak": self.lc_burst.peak(),
                "lc_refused": self.lc_burst.refused,
                "options": vars(self.options).copy(),
            }
