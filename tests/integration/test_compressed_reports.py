"""Reports written straight to Kafka with any compression Kafka supports are read and rolled up."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka import AIOKafkaProducer

from dxpulse.kafka.subscriber import latest_rollups
from dxpulse.kafka.topics import REPORTS
from dxpulse.stack.settings import StackSettings
from tests.integration.ingest_support import report

pytestmark = pytest.mark.integration

# A figure no other test of the session reads.
INDICATOR, PERIOD = "digital_tech_enterprises", "2024-H2"
# Reporters whose values no other test of the session lists.
CODECS = {"gzip": "province:10", "snappy": "province:11", "lz4": "province:12", "zstd": "province:14"}


async def test_every_compression_codec_is_read(pipeline: StackSettings) -> None:
    for number, (codec, reporter) in enumerate(CODECS.items(), start=1):
        producer = AIOKafkaProducer(
            bootstrap_servers=pipeline.kafka_bootstrap, acks="all", compression_type=codec
        )
        await producer.start()
        try:
            body = report(reporter, INDICATOR, PERIOD, {"kind": "count", "value": number})
            await producer.send_and_wait(
                REPORTS, key=f"{INDICATOR}|{PERIOD}".encode(), value=json.dumps(body).encode()
            )
        finally:
            await producer.stop()
    expected = sum(range(1, len(CODECS) + 1))
    deadline = time.monotonic() + 120
    while True:
        rollup = (await latest_rollups(pipeline.kafka_bootstrap)).get(f"{INDICATOR}|{PERIOD}|provinces")
        if rollup is not None and rollup.numerator == expected:
            break
        assert time.monotonic() < deadline, f"rollup {rollup}: some compressed report was not read"
        await asyncio.sleep(1)
    assert rollup.reporters_reported == len(CODECS)
