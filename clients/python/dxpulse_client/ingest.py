"""The ingest client: send reports one at a time or in batches, and see each one's outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx

MAX_BATCH = 500
"""The ingest API's largest batch (DXPULSE_MAX_BATCH_ITEMS cannot be set higher)."""
RETRIED = frozenset({429, 503})
"""Answers that mean "nothing was taken, send again after Retry-After"."""
UNAUTHORIZED = 401
"""The token is missing, unknown or revoked: every later batch would be refused the same way."""


@runtime_checkable
class Model(Protocol):
    """A report model that dumps itself to JSON data, such as a pydantic model of a report."""

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


Payload = Model | Mapping[str, Any]
"""A report: a model, or the JSON object of one (sent as is: the API judges it)."""


def problem_slug(problem: Mapping[str, Any]) -> str:
    """The slug of a problem's ``type`` (https://dxpulse.dev/problems/<slug>), e.g. "retired-reporter"."""
    return str(problem.get("type", "")).rsplit("/", 1)[-1]


def _json_of(item: Payload) -> Any:
    return item.model_dump(mode="json") if isinstance(item, Model) else item


def _event_id(item: Payload) -> str | None:
    value = _json_of(item).get("event_id")
    return value if isinstance(value, str) else None


def _body(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; a body that is not one becomes a problem carrying its text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {"status": response.status_code, "detail": response.text}


@dataclass(frozen=True)
class SendResult:
    """What the API answered for one report."""

    event_id: str | None
    status: int
    body: dict[str, Any]

    @property
    def accepted(self) -> bool:
        """Kafka has it: accepted now (202) or before (200, duplicate)."""
        return self.status in (200, 202)

    @property
    def problem(self) -> str:
        """The refusal in one line, e.g. "422 retired-reporter: province:58 ceased ..."."""
        return f"{self.status} {problem_slug(self.body)}: {self.body.get('detail', '')}"


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
        return f"{problem_slug(self.problem)}: {self.problem.get('detail', '')}"


@dataclass(frozen=True)
class BatchAnswer:
    """The API's answer to one batch: HTTP status, one outcome per item, Retry-After if given."""

    status: int
    outcomes: list[ItemOutcome]
    retry_after_s: float | None
    body: Mapping[str, Any]


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

    async def send(self, report: Payload) -> SendResult:
        """Send one report (POST /v1/reports)."""
        response = await self._http.post("/v1/reports", json=_json_of(report))
        return SendResult(_event_id(report), response.status_code, _body(response))

    async def send_batch(self, items: Sequence[Payload]) -> BatchAnswer:
        """Send up to 500 reports at once (POST /v1/batches); one outcome per item.

        A whole-batch refusal (401, 413, 429, ...) gives every item that refusal as its problem.
        """
        response = await self._http.post("/v1/batches", json={"reports": [_json_of(i) for i in items]})
        body = _body(response)
        results = body.get("results")
        if isinstance(results, list) and len(results) == len(items):
            outcomes = [
                ItemOutcome(r["index"], r.get("event_id"), r["status"], r.get("problem")) for r in results
            ]
        else:
            outcomes = [ItemOutcome(i, _event_id(item), "rejected", body) for i, item in enumerate(items)]
        retry_after = response.headers.get("retry-after", "")
        return BatchAnswer(
            response.status_code, outcomes, float(retry_after) if retry_after.isdigit() else None, body
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
            answer = await self._send_until_taken(chunk, max_wait_s)
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

    async def _send_until_taken(self, chunk: Sequence[Payload], max_wait_s: float) -> BatchAnswer:
        waited = 0.0
        while True:
            answer = await self.send_batch(chunk)
            if answer.status not in RETRIED or waited >= max_wait_s:
                return answer
            pause = min(answer.retry_after_s or 1.0, max_wait_s - waited)
            await asyncio.sleep(pause)
            waited += pause


def send_all(
    base_url: str, token: str, items: Sequence[Payload], *, max_wait_s: float = 120.0
) -> list[ItemOutcome]:
    """``IngestClient.send_all`` for code that is not async: send, wait for every outcome, return them."""

    async def run() -> list[ItemOutcome]:
        async with IngestClient(base_url, token=token) as client:
            return await client.send_all(items, max_wait_s=max_wait_s)

    return asyncio.run(run())
