"""dxpulse_client without a server: batches, per-item outcomes, retries, a refused token, report objects."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from dxpulse_client import (
    IngestClient,
    ItemOutcome,
    SendResult,
    catalog,
    count,
    derived_event_id,
    flag,
    problem_slug,
    ratio,
    report,
)

PROBLEM = "https://dxpulse.dev/problems/"
Answer = Callable[[httpx.Request], httpx.Response]


def _reports(n: int) -> list[dict[str, Any]]:
    return [{"event_id": str(uuid.uuid4()), "reporter": "province:79"} for _ in range(n)]


def _send_all(answer: Answer, items: list[dict[str, Any]], **options: Any) -> list[ItemOutcome]:
    async def run() -> list[ItemOutcome]:
        async with IngestClient("http://ingest", token="t", transport=httpx.MockTransport(answer)) as client:
            return await client.send_all(items, **options)

    return asyncio.run(run())


def _results(reports: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [{"index": i, "event_id": r["event_id"], "status": status} for i, r in enumerate(reports)]


def test_every_batch_is_sent_and_each_item_keeps_its_own_outcome() -> None:
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
    outcomes = _send_all(answer, items, progress=advanced.append)
    assert sizes == [500, 500, 200]
    assert [o.index for o in outcomes] == list(range(1_200))
    assert [o.event_id for o in outcomes] == [r["event_id"] for r in items]
    assert [o.status for o in outcomes[498:502]] == ["accepted", "duplicate", "accepted", "duplicate"]
    assert all(o.ok for o in outcomes)
    assert sum(advanced) == 1_200


def test_a_refused_token_stops_the_sending_and_every_report_gets_the_refusal() -> None:
    requests: list[httpx.Request] = []
    refusal = {"type": PROBLEM + "unauthorized", "status": 401, "detail": "unknown or revoked token"}

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(401, json=refusal, headers={"content-type": "application/problem+json"})

    items = _reports(1_200)
    advanced: list[int] = []
    outcomes = _send_all(answer, items, progress=advanced.append)
    assert len(requests) == 1  # not three: the later batches would be refused the same way
    assert requests[0].headers["authorization"] == "Bearer t"
    assert len(outcomes) == 1_200
    assert {o.status for o in outcomes} == {"rejected"}
    assert {o.reason for o in outcomes} == {"unauthorized: unknown or revoked token"}
    assert [o.event_id for o in outcomes] == [r["event_id"] for r in items]
    assert sum(advanced) == 1_200


def test_a_503_is_waited_out_as_retry_after_says_and_the_batch_sent_again() -> None:
    answers = iter(
        [
            httpx.Response(503, json={"type": PROBLEM + "kafka-unavailable"}, headers={"retry-after": "0"}),
            httpx.Response(429, json={"type": PROBLEM + "rate-limited"}, headers={"retry-after": "0"}),
        ]
    )
    sent: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        reports = json.loads(request.content)["reports"]
        sent.append([r["event_id"] for r in reports])
        return next(answers, None) or httpx.Response(200, json={"results": _results(reports, "duplicate")})

    items = _reports(3)
    outcomes = _send_all(answer, items)
    assert len(sent) == 3
    assert sent[0] == sent[1] == sent[2]
    assert [o.status for o in outcomes] == ["duplicate"] * 3


def test_a_503_that_lasts_gives_up_after_max_wait_with_the_refusal_as_each_problem() -> None:
    refusal = {"type": PROBLEM + "kafka-unavailable", "status": 503, "detail": "send again"}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json=refusal, headers={"retry-after": "1"})

    outcomes = _send_all(answer, _reports(2), max_wait_s=0.05)
    assert [o.reason for o in outcomes] == ["kafka-unavailable: send again"] * 2
    assert not any(o.ok for o in outcomes)


def test_one_report_is_posted_as_json_and_its_answer_kept() -> None:
    seen: list[httpx.Request] = []
    refusal = {
        "type": PROBLEM + "retired-reporter",
        "status": 422,
        "detail": "province:58 ceased on 2025-06-30; report as province:56",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(422, json=refusal)

    sent = report(
        "province:58", "online_records_rate", "2025-H2", ratio(1, 2), observed_at="2025-12-01T00:00:00Z"
    )

    async def run() -> SendResult:
        async with IngestClient("http://ingest", token="t", transport=httpx.MockTransport(answer)) as client:
            return await client.send(sent)

    result = asyncio.run(run())
    assert seen[0].url.path == "/v1/reports"
    assert json.loads(seen[0].content) == sent
    assert result.event_id == sent["event_id"]
    assert not result.accepted
    assert result.problem == "422 retired-reporter: province:58 ceased on 2025-06-30; report as province:56"


def test_an_answer_that_is_not_json_becomes_a_problem_with_its_text() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="Bad Gateway")

    outcomes = _send_all(answer, _reports(2))
    assert [o.status for o in outcomes] == ["rejected", "rejected"]
    assert outcomes[0].problem == {"status": 502, "detail": "Bad Gateway"}


def test_a_report_object_has_every_field_and_a_derived_id_that_repeats() -> None:
    when = datetime(2024, 6, 30, 17, 0, tzinfo=timezone(timedelta(hours=7)))
    made = report("province:79", "online_records_rate", "2024-H1", ratio(12345, 30000), observed_at=when)
    assert made == {
        "schema_version": 1,
        "event_id": derived_event_id("province:79", "online_records_rate", "2024-H1", "2024-06-30T10:00:00Z"),
        "reporter": "province:79",
        "indicator": "online_records_rate",
        "period": "2024-H1",
        "observed_at": "2024-06-30T10:00:00Z",
        "value": {"kind": "ratio", "numerator": 12345, "denominator": 30000},
    }
    again = report("province:79", "online_records_rate", "2024-H1", ratio(1, 2), observed_at=when)
    later = report(
        "province:79", "online_records_rate", "2024-H1", ratio(1, 2), observed_at=when + timedelta(1)
    )
    assert again["event_id"] == made["event_id"]
    assert later["event_id"] != made["event_id"]
    own = report("ministry:MOH", "x", "2024", flag(True), observed_at=datetime.now(UTC), event_id="e")
    assert own["event_id"] == "e"


def test_values_of_each_kind_and_a_naive_time_is_refused() -> None:
    assert flag(False) == {"kind": "flag", "value": False}
    assert count(5) == {"kind": "count", "value": 5}
    assert catalog(iter(["eps-01", "eps-02"])) == {"kind": "catalog", "done": ["eps-01", "eps-02"]}
    with pytest.raises(ValueError, match="time zone"):
        report("province:79", "x", "2024", count(1), observed_at=datetime(2024, 1, 1))


def test_the_slug_is_the_last_part_of_the_type() -> None:
    assert problem_slug({"type": PROBLEM + "negative-value"}) == "negative-value"
    assert problem_slug({}) == ""
