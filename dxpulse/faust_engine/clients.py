"""What dxpulse needs of aiokafka's clients beyond their public API: a producer's sender, fresh metadata."""

from __future__ import annotations

import contextlib

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError


def sender_alive(producer: AIOKafkaProducer) -> bool:
    """Whether aiokafka's sender task runs: once it has died, every send fails with its error."""
    task = producer._sender.sender_task
    return task is None or not task.done()


async def abandon(producer: AIOKafkaProducer, reason: str) -> None:
    """Stop ``producer``'s sender, with its requests in flight, and fail every batch it still holds.

    aiokafka's ``stop`` waits for every batch to be delivered, which never happens while Kafka takes
    none of them (down, or refusing them); after this, ``stop`` returns.
    """
    sender = producer._sender.sender_task
    if sender is not None:
        sender.cancel()
        with contextlib.suppress(BaseException):
            await sender
    producer._message_accumulator.fail_all(KafkaConnectionError(reason))


async def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Ask Kafka for the cluster's metadata now: a consumer just started may not know a topic yet."""
    await consumer._client.force_metadata_update()
