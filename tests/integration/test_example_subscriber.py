"""The example subscriber, stopped and started again, shows every key's current figure on Kafka."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from dxpulse.stack.settings import StackSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = [sys.executable, "-m", "examples.subscribe_rollups"]
IDLE_EXIT_S = 10.0
"""Long enough on a loaded machine for the first fetch of a fresh consumer."""


def _rollup(indicator: str, numerator: float, revision: str) -> dict[str, Any]:
    return {
        "indicator": indicator,
        "period": "2031-H1",
        "scope": "national",
        "value": numerator / 84,
        "numerator": numerator,
        "denominator": 84.0,
        "reporters_reported": 84,
        "reporters_expected": 84,
        "revision": revision,
    }


async def _compacted_topic(bootstrap: str) -> str:
    topic = f"example-rollups-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {"cleanup.policy": "compact"}
        await admin.create_topics(
            [NewTopic(topic, num_partitions=3, replication_factor=1, topic_configs=configs)]
        )
    finally:
        await admin.close()
    return topic


async def _publish(bootstrap: str, topic: str, records: list[tuple[str, dict[str, Any] | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, rollup in records:
            value = None if rollup is None else json.dumps(rollup).encode()
            await producer.send_and_wait(topic, key=key.encode(), value=value)
    finally:
        await producer.stop()


async def _run_example(bootstrap: str, topic: str) -> dict[str, str]:
    """One run of the example until it is idle: the last line it printed per figure."""
    process = await asyncio.create_subprocess_exec(
        *EXAMPLE,
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--idle-exit",
        str(IDLE_EXIT_S),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0
    shown: dict[str, str] = {}
    for line in output.decode().splitlines():
        name, _, figure = line.partition(": ")
        shown[name] = figure
    return {name: figure for name, figure in shown.items() if figure != "deleted"}


async def test_after_a_restart_every_current_figure_is_shown_not_only_the_changed_ones(
    pipeline: StackSettings,
) -> None:
    bootstrap = pipeline.kafka_bootstrap
    topic = await _compacted_topic(bootstrap)
    await _publish(
        bootstrap,
        topic,
        [
            ("steady|2031-H1|national", _rollup("steady", 80, "s1")),
            ("moving|2031-H1|national", _rollup("moving", 40, "m1")),
            ("removed|2031-H1|national", _rollup("removed", 10, "r1")),
        ],
    )
    first = await _run_example(bootstrap, topic)
    assert first == {
        "steady 2031-H1 national": "0.952 (80/84), 84/84 reported",
        "moving 2031-H1 national": "0.476 (40/84), 84/84 reported",
        "removed 2031-H1 national": "0.119 (10/84), 84/84 reported",
    }

    # While it is stopped, one figure changes and one is deleted; "steady" stays as it was.
    await _publish(
        bootstrap,
        topic,
        [("moving|2031-H1|national", _rollup("moving", 42, "m2")), ("removed|2031-H1|national", None)],
    )
    second = await _run_example(bootstrap, topic)
    assert second == {
        "steady 2031-H1 national": "0.952 (80/84), 84/84 reported",
        "moving 2031-H1 national": "0.500 (42/84), 84/84 reported",
    }
