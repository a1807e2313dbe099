"""Dates as agents send them: an ISO date or date-time, in the form the CRM stores."""

from __future__ import annotations

from datetime import date, datetime


def iso_date(value: str) -> str:
    """Normalise an ISO date or date-time to the form the CRM stores (YYYY-MM-DDTHH:MM:SS)."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat() + "T00:00:00"
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        raise ValueError("must be an ISO date like 2026-12-31 (or an ISO date-time)") from None
