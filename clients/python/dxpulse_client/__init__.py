"""The Python client of the dxpulse ingest API, for the local systems that send reports."""

from __future__ import annotations

from dxpulse_client.ingest import (
    MAX_BATCH,
    RETRIED,
    BatchAnswer,
    IngestClient,
    ItemOutcome,
    Model,
    Payload,
    SendResult,
    problem_slug,
    send_all,
)
from dxpulse_client.reports import catalog, count, derived_event_id, flag, ratio, report

__all__ = [
    "MAX_BATCH",
    "RETRIED",
    "BatchAnswer",
    "IngestClient",
    "ItemOutcome",
    "Model",
    "Payload",
    "SendResult",
    "catalog",
    "count",
    "derived_event_id",
    "flag",
    "problem_slug",
    "ratio",
    "report",
    "send_all",
]
