"""``IngestClient.send_all`` without a server: batches, per-item outcomes, stopping on a refused token."""

from __future__ import annotations

import json
import uuid

import httpx

from dxpulse.client import IngestClient

PROBLEM = "https://dxpulse.dev/problems/"


def _reports(n: int) -> list[dict[str, object]]:
    return [{"event_id": str(uuid.uuid4()), "reporter": "province:79"} for _ in range(n)]


async def test_every_batch_is_sent_and_each_item_keeps_its_own_outcome() -> None:
    sizes: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        reports = json.loads(request.content)["reports"]
        sizes.append(len(reports))
        results = [
            {"index": i, "event_id": r["event_id"], "status": "accepted" if i % 2 == 0 else "duplicate"}
            for i, r in enumerate(reports)
        ]
        return httpx.Response(200, json={"results": results})

    items = _reports(1_200)
    advanced: list[int] = []
    async with IngestClient("http://ingest", token="t", transport=httpx.MockTransport(answer)) as client:
        outcomes = await client.send_all(items, progress=advanced.append)
    assert sizes == [500, 500, 200]
    assert [o.index for o in outcomes] == list(range(1_200))
    assert [o.event_id for o in outcomes] == [r["event_id"] for r in items]
    assert [o.status for o in outcomes[498:502]] == ["accepted", "duplicate", "accepted", "duplicate"]
    assert sum(advanced) == 1_200


async def test_a_refused_token_stops_the_sending_and_every_report_gets_the_refusal() -> None:
    requests: list[httpx.Request] = []
    refusal = {"type": PROBLEM + "unauthorized", "status": 401, "detail": "unknown or revoked token"}

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(401, json=refusal, headers={"content-type": "application/problem+json"})

    items = _reports(1_200)
    advanced: list[int] = []
    async with IngestClient("http://ingest", token="bad", transport=httpx.MockTransport(answer)) as client:
        outcomes = await client.send_all(items, progress=advanced.append)
    assert len(requests) == 1  # not three: the later batches would be refused the same way
    assert requests[0].headers["authorization"] == "Bearer bad"
    assert len(outcomes) == 1_200
    assert {o.status for o in outcomes} == {"rejected"}
    assert {o.reason for o in outcomes} == {"unauthorized: unknown or revoked token"}
    assert [o.event_id for o in outcomes] == [r["event_id"] for r in items]
    assert sum(advanced) == 1_200
