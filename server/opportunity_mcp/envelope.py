"""The envelope: what every write tool answers as structuredContent, and the journal keeps."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Envelope(BaseModel):
    """The result every tool returns as structuredContent (None fields are left out)."""

    ok: bool
    action: Literal["created", "updated", "already_done"]
    account: str
    id: str
    code: str | None = None
    name: str | None = None
    amount: float | None = None
    stage: str | None = None
    status: str | None = None
    contact: str | None = None
    assignee: str | None = None
    # What names and phones the call gave were resolved to, in words: {"stage": "Negociación",
    # "contact": "Maria Lopez (+51912345678)", "assignee": "juan@acme.com"}.
    resolved: dict[str, str] | None = None
    warnings: list[str] = Field(default_factory=list)
    confirmed: str | None = None  # how a person confirmed it, when the account asks for that

    def wire(self) -> dict[str, Any]:
        """As JSON, without the fields the CRM did not fill. Every field is a plain JSON value, so
        this reads them directly rather than through pydantic's serializer (a per-call cost)."""
        out = {k: v for k, v in vars(self).items() if v is not None}
        out["warnings"] = list(self.warnings)
        return out
