"""Report objects as the ingest API takes them, with event ids that make a resend harmless."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

EVENT_ID_NAMESPACE = uuid.UUID("0c4f7a0e-61b5-4d0a-9a55-7f3ef2a8c1d4")
"""The UUID namespace of derived event ids; ``dxpulse send`` derives the ids of a file's reports so too."""


def derived_event_id(reporter: str, indicator: str, period: str, observed_at: str) -> str:
    """An event id from the report's identity: the same report sent twice gets the same id, so the
    second is answered "duplicate" and changes nothing."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{reporter}|{indicator}|{period}|{observed_at}"))


def flag(value: bool) -> dict[str, Any]:
    """A yes/no value, e.g. "our procedure system is connected to EMC"."""
    return {"kind": "flag", "value": value}


def ratio(numerator: float, denominator: float) -> dict[str, Any]:
    """A part of a whole, e.g. 12,345 of 30,000 records filed online."""
    return {"kind": "ratio", "numerator": numerator, "denominator": denominator}


def count(value: float) -> dict[str, Any]:
    """A quantity summed nationally."""
    return {"kind": "count", "value": value}


def catalog(done: Iterable[str]) -> dict[str, Any]:
    """The items of the indicator's fixed list that are done, by item id."""
    return {"kind": "catalog", "done": list(done)}


def _timestamp(observed_at: datetime | str) -> str:
    if isinstance(observed_at, str):
        return observed_at
    if observed_at.tzinfo is None:
        raise ValueError("observed_at needs a time zone, e.g. datetime.now(UTC)")
    return observed_at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def report(
    reporter: str,
    indicator: str,
    period: str,
    value: dict[str, Any],
    *,
    observed_at: datetime | str,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A report object for ``IngestClient``; without ``event_id`` the id is derived from the report's
    identity (``derived_event_id``), so sending it again is harmless."""
    when = _timestamp(observed_at)
    return {
        "schema_version": 1,
        "event_id": event_id or derived_event_id(reporter, indicator, period, when),
        "reporter": reporter,
        "indicator": indicator,
        "period": period,
        "observed_at": when,
        "value": value,
    }
