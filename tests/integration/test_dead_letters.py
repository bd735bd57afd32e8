"""Direct Kafka producers: an invalid raw report goes to the dead-letter topic and the aggregator goes on."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from dxpulse.kafka.subscriber import latest_rollups, read_records
from dxpulse.kafka.topics import DEAD_LETTERS, REPORTS, partition_of
from dxpulse.stack.settings import StackSettings
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
    # Valid, but keyed otherwise than indicator|period (or not at all): a second state must not start.
    ratio = {"kind": "ratio", "numerator": 1, "denominator": 4}
    wrong_key = json.dumps(report("province:01", indicator, period, ratio)).encode()
    no_key = json.dumps(report("province:02", indicator, period, ratio)).encode()
    # Keyed right, on another partition than its key's: its worker would hold a second state.
    wrong_partition = json.dumps(report("province:58", indicator, period, ratio)).encode()
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
        await producer.send_and_wait(REPORTS, key=b"province:01", value=wrong_key)
        await producer.send_and_wait(REPORTS, value=no_key)
        elsewhere = (partition_of(key, pipeline.topic_partitions) + 1) % pipeline.topic_partitions
        await producer.send_and_wait(REPORTS, key=key, value=wrong_partition, partition=elsewhere)
        await producer.send_and_wait(REPORTS, key=key, value=json.dumps(valid).encode())
    finally:
        await producer.stop()

    deadline = time.monotonic() + 120
    while True:
        # Every record, keyed or not (read_topic skips unkeyed ones, as the unkeyed report's letter is).
        records = await read_records(pipeline.kafka_bootstrap, DEAD_LETTERS)
        letters = [DeadLetter.model_validate_json(r.value) for r in records if r.value is not None]
        originals = {base64.b64decode(letter.original): letter for letter in letters}
        rollups = await latest_rollups(pipeline.kafka_bootstrap)
        if (
            garbage in originals
            and b"\xff\xfe\x00" in originals
            and {wrong_key, no_key, wrong_partition} <= set(originals)
            and f"{indicator}|{period}|national" in rollups
        ):
            break
        assert time.monotonic() < deadline, f"dead letters {len(letters)}, rollups {sorted(rollups)[:5]}"
        await asyncio.sleep(1)
    letter = originals[garbage]
    assert letter.reason == "malformed-json"  # the slug the ingest answers for the same body
    assert letter.source_topic == REPORTS
    assert letter.original_key == key.decode()
    assert originals[b"\xff\xfe\x00"].reason == "malformed-json"
    assert originals[json.dumps(wrong_kind).encode()].reason == "wrong-value-kind"
    assert (originals[wrong_key].reason, originals[wrong_key].original_key) == ("wrong-key", "province:01")
    assert (originals[no_key].reason, originals[no_key].original_key) == ("wrong-key", None)
    assert (originals[wrong_partition].reason, originals[wrong_partition].source_partition) == (
        "wrong-partition",
        elsewhere,
    )
    assert rollups[f"{indicator}|{period}|provinces"].reporters_reported == 1
