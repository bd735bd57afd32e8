"""Whatever reaches the reports topic or the API, every service stays up and later reports are rolled up.

Hypothesis draws the inputs: random bytes of any size up to the broker's largest message, random
JSON, and reports with extreme numbers, odd types and any instants. Each is written straight to the
reports topic and sent to the ingest API. Every message the pipeline must refuse is then found on
the dead-letter topic, no service has restarted, and a valid report sent afterwards is rolled up.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.registry import default_registry
from dxpulse.domain.validation import Problem, parse_report, validate_report
from dxpulse.kafka.subscriber import latest_rollups, read_records
from dxpulse.kafka.topics import DEAD_LETTERS, REPORTS, partition_of
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack
from schemas import DeadLetter
from schemas.events import report_key
from tests.hostile import JSON, as_json, raw_reports, sized_bytes
from tests.integration.ingest_support import auth, new_token, report
from tests.integration.processes import all_alive, service_pids

pytestmark = pytest.mark.integration

PARTITIONS = 6
"""The reports topic's partitions in the session's stack (checked in each round)."""
BROKER_MESSAGE_MAX = 1_048_588
"""Kafka's default ``message.max.bytes``: a record batch (one record here) up to this is accepted."""
VALUE_MAX = BROKER_MESSAGE_MAX - 4_096
"""The largest value written: the key, the record and its batch's headers take the rest."""

# Periods no other test of the session reads figures of (2025-H1 of records_digitisation_rate is
# test_dead_letters'); the due periods the alerts tests judge are later ones.
PERIODS = {
    "half": st.just("2025-H1"),
    "quarter": st.just("2025-Q1"),
    "month": st.just("2025-01"),
    "year": st.just("2025"),
}
INDICATORS = tuple(i.id for i in default_catalog().indicators if i.id != "records_digitisation_rate")
HOSTILE_SETTINGS = settings(
    max_examples=int(os.environ.get("DXPULSE_HOSTILE_EXAMPLES", "6")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


RawMessage = tuple[bytes | None, bytes, int | None]
"""A message as a producer writing straight to Kafka might send it: key, value, and the partition
it names (None: Kafka's default partitioner chooses)."""


@st.composite
def raw_messages(draw: st.DrawFn) -> RawMessage:
    """A message as a producer writing straight to Kafka might send it."""
    which = draw(st.sampled_from(["report", "report", "report", "json", "bytes", "large"]))
    if which == "report":
        raw = draw(raw_reports(INDICATORS, PERIODS))
        key = report_key(raw["indicator"], raw["period"]).encode()
        if draw(st.integers(0, 9)) == 0:
            key = draw(st.sampled_from([b"", b"\xff\xfe", b"x" * 5_000, key + b"|x"]))
        # Now and then a partition of the producer's choosing: its key's, or another.
        partition = draw(st.integers(0, PARTITIONS - 1)) if draw(st.integers(0, 4)) == 0 else None
        return key, as_json(raw), partition
    key = f"{draw(st.sampled_from(INDICATORS))}|2025-H1".encode()
    if which == "json":
        return key, as_json(draw(JSON)), None
    if which == "bytes":
        return key, draw(st.binary(max_size=2_000)), None
    size = draw(st.one_of(st.integers(100_000, VALUE_MAX), st.sampled_from([VALUE_MAX, 700_000, 900_000])))
    return key, sized_bytes(size, draw(st.integers(0, 2**32))), None


@st.composite
def api_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """A request body for POST /v1/reports or /v1/batches, as province:79's token sends it."""
    own = st.just("province:79")
    if draw(st.booleans()):
        reports = [draw(raw_reports(INDICATORS, PERIODS, own)) for _ in range(draw(st.integers(1, 5)))]
        return "/v1/batches", as_json({"reports": reports})
    body = draw(
        st.one_of(
            raw_reports(INDICATORS, PERIODS, own).map(as_json),
            JSON.map(as_json),
            st.binary(max_size=500),
        )
    )
    return "/v1/reports", body


def _refused_by_pipeline(message: RawMessage, now: datetime) -> bool:
    """Whether the aggregator must dead-letter this message: the oracle, from the pure checks."""
    key, value, partition = message
    parsed = parse_report(value)
    if isinstance(parsed, Problem):
        return True
    if isinstance(validate_report(parsed, default_catalog(), default_registry(), now), Problem):
        return True
    if key is None or key.decode(errors="replace") != report_key(parsed.indicator, parsed.period):
        return True
    return partition is not None and partition != partition_of(key, PARTITIONS)


async def _dead_letter_digests(bootstrap: str) -> set[str]:
    records = await read_records(bootstrap, DEAD_LETTERS, timeout_s=60)
    letters = [DeadLetter.model_validate_json(r.value) for r in records if r.value is not None]
    # Letters written before digests existed carry their whole original.
    return {
        letter.original_sha256 or hashlib.sha256(base64.b64decode(letter.original)).hexdigest()
        for letter in letters
    }


async def _write_raw(bootstrap: str, messages: list[RawMessage]) -> None:
    # Above aiokafka's 1 MiB default request limit, so that the broker's own limit is the one tried.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2 * 1024 * 1024)
    await producer.start()
    try:
        for key, value, partition in messages:
            await producer.send_and_wait(REPORTS, key=key, value=value, partition=partition)
    finally:
        await producer.stop()


async def _send_to_api(url: str, token: str, bodies: list[tuple[str, bytes]]) -> list[str]:
    """Send each body; every answer is a 2xx or a documented 4xx. The event ids answered 2xx."""
    accepted: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for path, body in bodies:
            headers = {**auth(token), "content-type": "application/json"}
            response = await client.post(path, content=body, headers=headers)
            assert response.status_code in (200, 202, 400, 403, 413, 422), (path, body[:300], response.text)
            if response.status_code == 202:
                accepted.append(response.json()["event_id"])
            elif path == "/v1/batches" and response.status_code == 200:
                accepted += [r["event_id"] for r in response.json()["results"] if r["status"] == "accepted"]
    return accepted


async def _published_event_ids(bootstrap: str) -> set[str]:
    ids = set()
    for record in await read_records(bootstrap, REPORTS, timeout_s=60):
        try:
            ids.add(str(json.loads(record.value or b"")["event_id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return ids


async def _wait_until(check: Any, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(1)


@pytest.fixture(scope="module")
def province_token(pipeline: StackSettings) -> str:
    return asyncio.run(new_token(pipeline.database_url, "province:79", "hostile"))


def _report_of(value: dict[str, Any], reporter: str = "province:79") -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "reporter": reporter,
        "indicator": "digital_tech_enterprises",
        "period": "2025-H1",
        "observed_at": "2025-06-30T10:00:00Z",
        "value": value,
    }


DTE_KEY = b"digital_tech_enterprises|2025-H1"
KNOWN_KILLERS: list[RawMessage] = [
    # Each once stopped the aggregator for good: two counts whose sum overflows a float, and a
    # message whose dead letter (base64, a third larger) went over Kafka's record size.
    (DTE_KEY, as_json(_report_of({"kind": "count", "value": 1e308}, "province:01")), None),
    (DTE_KEY, as_json(_report_of({"kind": "count", "value": 1e308}, "province:79")), None),
    (DTE_KEY, sized_bytes(900_000, 1), None),
    # A report on another partition than its key's would start a second state of its figure.
    (
        DTE_KEY,
        as_json(_report_of({"kind": "count", "value": 3}, "province:01")),
        (partition_of(DTE_KEY, PARTITIONS) + 1) % PARTITIONS,
    ),
]


@HOSTILE_SETTINGS
@example(
    messages=KNOWN_KILLERS,
    bodies=[("/v1/reports", as_json(_report_of({"kind": "count", "value": v}))) for v in (1e308, "12", True)],
)
@given(messages=st.lists(raw_messages(), min_size=1, max_size=8), bodies=st.lists(api_bodies(), max_size=8))
def test_no_input_stops_the_pipeline(
    pipeline: StackSettings,
    province_token: str,
    messages: list[RawMessage],
    bodies: list[tuple[str, bytes]],
) -> None:
    asyncio.run(_hostile_round(pipeline, province_token, messages, bodies))


async def _hostile_round(
    pipeline: StackSettings,
    token: str,
    messages: list[RawMessage],
    bodies: list[tuple[str, bytes]],
) -> None:
    assert pipeline.topic_partitions == PARTITIONS
    stack = Stack(pipeline, report=lambda _: None)
    before = service_pids(stack)
    assert all_alive(before), before
    url = f"http://127.0.0.1:{pipeline.ingest_port}"

    await _write_raw(pipeline.kafka_bootstrap, messages)
    accepted = await _send_to_api(url, token, bodies)
    now = datetime.now(UTC)
    refused = {hashlib.sha256(m[1]).hexdigest() for m in messages if _refused_by_pipeline(m, now)}

    # A valid report after them all, on a figure nobody else reports: rolled up, so the worker went on.
    marker = uuid.uuid4().int % 1_000_000
    valid = report("province:79", "digital_tech_enterprises", "2025-H2", {"kind": "count", "value": marker})
    valid["observed_at"] = datetime.now(UTC).isoformat()
    assert await _send_to_api(url, token, [("/v1/reports", as_json(valid))]) == [valid["event_id"]]

    async def rolled_up() -> bool:
        rollups = await latest_rollups(pipeline.kafka_bootstrap)
        figure = rollups.get("digital_tech_enterprises|2025-H2|provinces")
        return figure is not None and figure.numerator == marker

    await _wait_until(rolled_up, "the valid report sent after the hostile ones was not rolled up")

    async def all_dead_lettered() -> bool:
        return refused <= await _dead_letter_digests(pipeline.kafka_bootstrap)

    await _wait_until(all_dead_lettered, "a refused message is missing from the dead-letter topic")
    if accepted:
        assert set(accepted) <= await _published_event_ids(pipeline.kafka_bootstrap)
    after = service_pids(stack)
    assert after == before, "a service restarted"
    assert all_alive(after), after
