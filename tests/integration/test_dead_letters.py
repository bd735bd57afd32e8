"""Direct Kafka producers: an invalid raw report goes to the dead-letter topic and the aggregator goes on."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from dxpulse.stack.settings import StackSettings
from dxpulse.subscriber import latest_rollups, read_topic
from dxpulse.topics import DEAD_LETTERS, REPORTS
from schemas import DeadLetter
from tests.integration.ingest_support import report

pytestmark = pytest.mark.integration


async def test_malformed_raw_messages_are_dead_lettered_and_the_worker_keeps_going(
    pipeline: StackSettings,
) -> None:
    marker = uuid.uuid4().hex
    garbage = f"not json {marker}".encode()
    # An indicator without a target and a period nobody else uses: no alert, no other test's rollup.
    indicator, period = "records_digitisation_rate", "2025-H1"
    wrong_kind = report("province:79", indicator, period, {"kind": "flag", "value": True})
    # After the bad ones: a valid report, whose rollup proves the worker went on.
    valid = report(
        "province:79",
        indicator,
        period,
        {"kind": "ratio", "numerator": 1, "denominator": 2},
        observed_at="2025-06-30T10:00:00Z",
    )
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        key = f"{indicator}|{period}".encode()
        await producer.send_and_wait(REPORTS, key=key, value=garbage)
        await producer.send_and_wait(REPORTS, key=key, value=json.dumps(wrong_kind).encode())
        await producer.send_and_wait(REPORTS, key=key, value=b"\xff\xfe\x00")
        await producer.send_and_wait(REPORTS, key=key, value=json.dumps(valid).encode())
    finally:
        await producer.stop()

    deadline = time.monotonic() + 120
    while True:
        letters = [
            letter
            for _, letter in await read_topic(
                pipeline.kafka_bootstrap, DEAD_LETTERS, DeadLetter.model_validate_json
            )
        ]
        originals = {base64.b64decode(letter.original): letter for letter in letters}
        rollups = await latest_rollups(pipeline.kafka_bootstrap)
        if (
            garbage in originals
            and b"\xff\xfe\x00" in originals
            and f"{indicator}|{period}|national" in rollups
        ):
            break
        assert time.monotonic() < deadline, f"dead letters {len(letters)}, rollups {sorted(rollups)[:5]}"
        await asyncio.sleep(1)
    letter = originals[garbage]
    assert letter.reason == "invalid-report"
    assert letter.source_topic == REPORTS
    assert letter.original_key == key.decode()
    assert originals[b"\xff\xfe\x00"].reason == "invalid-report"
    assert originals[json.dumps(wrong_kind).encode()].reason == "wrong-value-kind"
    assert rollups[f"{indicator}|{period}|provinces"].reporters_reported == 1
