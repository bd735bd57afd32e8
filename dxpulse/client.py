"""The ingest client as dxpulse uses it: ``dxpulse_client``'s, and sending as many reporters at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from itertools import groupby

from dxpulse_client import (
    MAX_BATCH,
    RETRIED,
    BatchAnswer,
    IngestClient,
    ItemOutcome,
    Payload,
    SendResult,
    problem_slug,
)

from schemas import Report

__all__ = [
    "MAX_BATCH",
    "RETRIED",
    "BatchAnswer",
    "IngestClient",
    "ItemOutcome",
    "Payload",
    "SendResult",
    "problem_slug",
    "send_as_reporters",
]


async def send_as_reporters(
    base_url: str,
    tokens: Mapping[str, str],
    reports: Sequence[Report],
    *,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[Report, ItemOutcome]]:
    """Send reports, each with its reporter's token from ``tokens`` (the demo and tests do this).

    Reports go in waves, one per (indicator, period) in the order given, each wave's reporters
    concurrently (one batch per reporter): a figure then fills in at once, rather than while every
    reporter's turn comes, which would fire alerts on half-sent figures.
    """
    clients: dict[str, IngestClient] = {}

    async def send_own(reporter: str, own: list[Report]) -> list[tuple[Report, ItemOutcome]]:
        client = clients.get(reporter)
        if client is None:
            client = clients[reporter] = IngestClient(base_url, token=tokens[reporter])
        return list(zip(own, await client.send_all(own, progress=progress), strict=True))

    sent: list[tuple[Report, ItemOutcome]] = []
    try:
        for _, wave in groupby(reports, key=lambda r: (r.indicator, r.period)):
            by_reporter: dict[str, list[Report]] = {}
            for report in wave:
                by_reporter.setdefault(report.reporter, []).append(report)
            for done in await asyncio.gather(*(send_own(r, own) for r, own in by_reporter.items())):
                sent += done
    finally:
        for client in clients.values():
            await client.close()
    return sent
