"""A small client for local systems: send reports to the ingest API and see each one's outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import httpx

from schemas import Report

MAX_BATCH = 500
"""The ingest API's largest batch (DXPULSE_MAX_BATCH_ITEMS cannot be set higher)."""
RETRIED = frozenset({429, 503})
"""Answers that mean "nothing was taken, send again after Retry-After"."""
UNAUTHORIZED = 401
"""The token is missing, unknown or revoked: every later batch would be refused the same way."""

Payload = Report | Mapping[str, Any]
"""A report, or the JSON object of one (sent as is: the API judges it)."""


def _slug(problem: Mapping[str, Any]) -> str:
    return str(problem.get("type", "")).rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SendResult:
    """What the API answered for one report."""

    event_id: str
    status: int
    body: dict[str, Any]

    @property
    def accepted(self) -> bool:
        """Kafka has it: accepted now (202) or before (200, duplicate)."""
        return self.status in (200, 202)

    @property
    def problem(self) -> str:
        """The refusal in one line, e.g. "422 retired-reporter: province:58 ceased ..."."""
        return f"{self.status} {_slug(self.body)}: {self.body.get('detail', '')}"


@dataclass(frozen=True)
class ItemOutcome:
    """The outcome of one report of a batch: accepted, duplicate, rejected or unavailable."""

    index: int
    event_id: str | None
    status: str
    problem: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("accepted", "duplicate")

    @property
    def reason(self) -> str:
        """Why it was rejected, e.g. "numerator-exceeds-denominator: numerator 5 is greater ..."."""
        if self.problem is None:
            return self.status
        return f"{_slug(self.problem)}: {self.problem.get('detail', '')}"


@dataclass(frozen=True)
class BatchAnswer:
    """The API's answer to one batch: HTTP status, one outcome per item, Retry-After if given."""

    status: int
    outcomes: list[ItemOutcome]
    retry_after_s: float | None
    body: Mapping[str, Any]


def _payload(item: Payload) -> Any:
    return item.model_dump(mode="json") if isinstance(item, Report) else item


class IngestClient:
    """Send reports to a dxpulse ingest API with one reporter's token (one HTTP connection, reused)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``transport``: httpx's, e.g. ``httpx.ASGITransport(app)`` to talk to an app in-process."""
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    async def __aenter__(self) -> IngestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, report: Report) -> SendResult:
        """Send one report (POST /v1/reports)."""
        response = await self._http.post("/v1/reports", content=report.model_dump_json())
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text}
        return SendResult(str(report.event_id), response.status_code, body)

    async def send_batch(self, items: Sequence[Payload]) -> BatchAnswer:
        """Send up to 500 reports at once (POST /v1/batches); one outcome per item.

        A whole-batch refusal (401, 413, 429, ...) gives every item that refusal as its problem.
        """
        response = await self._http.post("/v1/batches", json={"reports": [_payload(i) for i in items]})
        try:
            body = response.json()
        except ValueError:
            body = {"status": response.status_code, "detail": response.text}
        results = body.get("results") if isinstance(body, dict) else None
        if isinstance(results, list) and len(results) == len(items):
            outcomes = [
                ItemOutcome(r["index"], r.get("event_id"), r["status"], r.get("problem")) for r in results
            ]
        else:
            outcomes = [
                ItemOutcome(i, _event_id(item), "rejected", body if isinstance(body, dict) else None)
                for i, item in enumerate(items)
            ]
        retry_after = response.headers.get("retry-after", "")
        return BatchAnswer(
            response.status_code,
            outcomes,
            float(retry_after) if retry_after.isdigit() else None,
            body if isinstance(body, dict) else {},
        )

    async def send_all(
        self,
        items: Sequence[Payload],
        *,
        batch_size: int = MAX_BATCH,
        max_wait_s: float = 120.0,
        progress: Callable[[int], None] | None = None,
    ) -> list[ItemOutcome]:
        """Send any number of reports in batches; waits out 429/503 (Retry-After) for up to ``max_wait_s``.

        Resending a batch after a 503 is safe: reports Kafka already has come back "duplicate".
        Once the token is refused (401) nothing more is sent: every later report gets that refusal.
        """
        outcomes: list[ItemOutcome] = []
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            waited = 0.0
            while True:
                answer = await self.send_batch(chunk)
                if answer.status not in RETRIED or waited >= max_wait_s:
                    break
                pause = min(answer.retry_after_s or 1.0, max_wait_s - waited)
                await asyncio.sleep(pause)
                waited += pause
            outcomes += [
                ItemOutcome(start + r.index, r.event_id, r.status, r.problem) for r in answer.outcomes
            ]
            if progress is not None:
                progress(len(chunk))
            if answer.status == UNAUTHORIZED:
                rest = items[start + len(chunk) :]
                outcomes += [
                    ItemOutcome(start + len(chunk) + i, _event_id(item), "rejected", answer.body)
                    for i, item in enumerate(rest)
                ]
                if progress is not None and rest:
                    progress(len(rest))
                break
        return outcomes


def _event_id(item: Payload) -> str | None:
    if isinstance(item, Report):
        return str(item.event_id)
    value = item.get("event_id")
    return value if isinstance(value, str) else None


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
