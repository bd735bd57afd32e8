"""``POST /v1/batches``: each report answered on its own; 503 with every result while Kafka fails some."""

from __future__ import annotations

import json
from typing import Any

import httpx

from dxpulse.http.problems import PROBLEM_BASE
from tests.unit.ingest.fakes import FakeProducer
from tests.unit.ingest.support import auth, key_of, metric, report, slug

RATIO = {"kind": "ratio", "numerator": 3, "denominator": 4}
JSON_TYPE = {"content-type": "application/json"}


def _statuses(body: dict[str, Any]) -> list[str]:
    return [result["status"] for result in body["results"]]


async def test_a_batch_answers_accepted_duplicate_and_rejected_reports_in_order(
    client: httpx.AsyncClient, producer: FakeProducer
) -> None:
    accepted = report()
    earlier = report(period="2024-H2")
    assert (await client.post("/v1/reports", json=earlier, headers=auth())).status_code == 202
    items: list[Any] = [
        accepted,
        report(indicator="no_such_indicator"),
        accepted,  # the same event twice in one batch: published once
        report("province:01"),
        {"event_id": "not-a-uuid"},
        earlier,  # accepted by an earlier request
        report(indicator="online_records_rate", value=RATIO),
        7,
    ]
    response = await client.post("/v1/batches", json={"reports": items}, headers=auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["index"] for r in body["results"]] == list(range(len(items)))
    assert _statuses(body) == [
        "accepted",
        "rejected",
        "duplicate",
        "rejected",
        "rejected",
        "duplicate",
        "accepted",
        "rejected",
    ]
    problems = [r["problem"]["type"].removeprefix(PROBLEM_BASE) for r in body["results"] if r["problem"]]
    assert problems == ["unknown-indicator", "forbidden-reporter", "invalid-report", "invalid-report"]
    assert [r["event_id"] for r in body["results"]][3:5] == [items[3]["event_id"], "not-a-uuid"]
    assert body["results"][7]["event_id"] is None
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 2, 4)
    assert sorted(p.key for p in producer.produced) == sorted(map(key_of, [earlier, accepted, items[6]]))
    metrics = (await client.get("/metrics")).text
    assert metric(metrics, "dxpulse_ingest_batch_size_count") == 1
    assert metric(metrics, "dxpulse_ingest_reports_total", outcome="accepted") == 3
    assert metric(metrics, "dxpulse_ingest_reports_total", reason="invalid-report", group="provinces") == 2


async def test_a_batch_of_valid_reports_is_answered_without_problems(client: httpx.AsyncClient) -> None:
    first, second = report(), report(indicator="online_records_rate", value=RATIO)
    response = await client.post("/v1/batches", json={"reports": [first, second, first]}, headers=auth())
    answered = [(first, "accepted"), (second, "accepted"), (first, "duplicate")]
    results = [
        {"index": index, "event_id": sent["event_id"], "status": status, "problem": None}
        for index, (sent, status) in enumerate(answered)
    ]
    assert response.json() == {"results": results, "accepted": 2, "duplicate": 1, "rejected": 0}


async def test_kafka_failing_some_partitions_is_503_with_every_result_and_a_resend_completes(
    client: httpx.AsyncClient, producer: FakeProducer
) -> None:
    items = [
        report(period=period) for period in ("2021-H1", "2021-H2", "2022-H1", "2022-H2", "2023-H1", "2024-H1")
    ]
    items.append(report(indicator="no_such_indicator"))
    failing = producer.partition_of(key_of(items[0]))
    producer.failing.add(failing)
    down = await client.post("/v1/batches", json={"reports": items}, headers=auth())
    assert (down.status_code, slug(down)) == (503, "kafka-unavailable")
    assert down.headers["retry-after"] == "5"
    body = down.json()
    assert body["detail"].startswith("Kafka did not acknowledge the reports marked unavailable")
    on_failing = [producer.partition_of(key_of(sent)) == failing for sent in items[:-1]]
    assert _statuses(body) == [
        *("unavailable" if failed else "accepted" for failed in on_failing),
        "rejected",
    ]
    assert 0 < sum(on_failing) < len(on_failing), "some partitions work: the check compares something"
    producer.failing.clear()
    again = (await client.post("/v1/batches", json={"reports": items}, headers=auth())).json()
    assert _statuses(again) == [*("accepted" if failed else "duplicate" for failed in on_failing), "rejected"]
    assert len(producer.produced) == len(items) - 1
    metrics = (await client.get("/metrics")).text
    assert metric(metrics, "dxpulse_ingest_reports_total", reason="kafka-unavailable") == sum(on_failing)


async def test_a_body_that_is_no_batch_is_refused_whole(client: httpx.AsyncClient) -> None:
    malformed = await client.post("/v1/batches", content=b"[[[", headers=auth())
    assert (malformed.status_code, slug(malformed)) == (400, "malformed-json")
    bodies: list[Any] = [[report()], {"reports": {}}, {"reports": [], "extra": 1}]
    for body in bodies:
        refused = await client.post("/v1/batches", json=body, headers=auth())
        assert (refused.status_code, slug(refused)) == (422, "invalid-batch")
        assert refused.json()["field"] == "reports"


async def test_more_reports_than_a_batch_may_hold_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/batches", json={"reports": [report()] * 501}, headers=auth())
    assert (response.status_code, slug(response)) == (413, "batch-too-large")
    assert response.json()["detail"] == "the batch has 501 reports; send at most 500 per batch"
    metrics = (await client.get("/metrics")).text
    assert metric(metrics, "dxpulse_ingest_reports_total", reason="batch-too-large") == 501


STRING_FIELDS = ("event_id", "reporter", "indicator", "period", "observed_at")


async def test_a_lone_surrogate_in_any_field_is_refused_not_a_server_error(client: httpx.AsyncClient) -> None:
    # JSON's \ud800 escape decodes to a string UTF-8 cannot write: nothing of it may be echoed as is.
    for field in STRING_FIELDS:
        item = {**report(), field: "\ud800"}
        body = json.dumps({"reports": [item, {**item, "value": {"kind": "catalog", "done": ["\udfff"]}}]})
        response = await client.post("/v1/batches", content=body, headers={**auth(), **JSON_TYPE})
        assert response.status_code == 200, (field, response.text)
        assert _statuses(response.json()) == ["rejected", "rejected"]
        single = await client.post("/v1/reports", content=json.dumps(item), headers={**auth(), **JSON_TYPE})
        assert single.status_code in (400, 403, 422), (field, single.text)
