"""The consumer finds where each report log starts on the real Kafka, after retention deleted its head."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from faust.types import TP

from dxpulse.faust_engine.support import FromStartConsumer, discard_unstarted, new_faust_app
from dxpulse.settings import WorkerSettings
from dxpulse.stack.settings import StackSettings


async def test_log_starts_are_the_first_offsets_kept(pipeline: StackSettings, tmp_path: Path) -> None:
    bootstrap = pipeline.kafka_bootstrap
    topic = f"log-starts-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        sent = [await producer.send(topic, value=b"x", partition=n % 2) for n in range(10)]
        await asyncio.gather(*sent)
        # What retention does to an old log: partition 0 now starts at offset 3, partition 1 at 0.
        head = {TopicPartition(topic, 0): RecordsToDelete(before_offset=3)}
        await admin.delete_records(head, timeout_ms=10_000)
    finally:
        await producer.stop()
        await admin.close()

    settings = WorkerSettings(kafka_bootstrap=bootstrap, state_dir=tmp_path)
    app = new_faust_app("it-log-starts", settings, web_port=6066)  # never started: no port bound
    consumer = app.consumer
    assert isinstance(consumer, FromStartConsumer)
    try:
        starts = await consumer._log_starts([TP(topic, 0), TP(topic, 1)])
    finally:
        discard_unstarted(app)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
    assert starts == {TP(topic, 0): 3, TP(topic, 1): 0}
