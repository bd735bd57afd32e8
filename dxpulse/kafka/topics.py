"""The Kafka topics dxpulse owns, created up front with explicit partitions and cleanup policies."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

log = logging.getLogger(__name__)

REPORTS = "dxpulse.reports.v1"
"""Raw reports from local systems, keyed ``indicator|period`` so one worker owns an (indicator, period)."""
ROLLUPS = "dxpulse.rollups.v1"
"""National rollups, keyed ``indicator|period|scope``; compacted, so a replay shows the latest of each."""
ALERTS = "dxpulse.alerts.v1"
"""Alert transitions (firing/resolved), keyed by alert fingerprint."""
DEAD_LETTERS = "dxpulse.reports.deadletter.v1"
"""Raw messages the pipeline could not accept, with the reason and the original bytes."""


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a keyed message goes to: Kafka's default partitioner (murmur2), as the Java
    clients, aiokafka and so faust all use it."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class TopicSpec:
    """One topic's name and the configuration it is created with."""

    name: str
    compacted: bool = False
    configs: dict[str, str] = field(default_factory=dict)

    def new_topic(self, partitions: int) -> NewTopic:
        configs = {"cleanup.policy": "compact" if self.compacted else "delete", **self.configs}
        return NewTopic(self.name, partitions, 1, topic_configs=configs)


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(REPORTS, configs={"retention.ms": str(90 * 24 * 3600 * 1000)}),
    TopicSpec(ROLLUPS, compacted=True, configs={"min.cleanable.dirty.ratio": "0.1"}),
    TopicSpec(ALERTS, configs={"retention.ms": str(365 * 24 * 3600 * 1000)}),
    TopicSpec(DEAD_LETTERS, configs={"retention.ms": str(30 * 24 * 3600 * 1000)}),
)

COMPACTED: frozenset[str] = frozenset(spec.name for spec in TOPICS if spec.compacted)
"""Shared topics whose old records compaction removes, so their offsets have holes."""


CHANGELOG_CONFIGS: dict[str, str] = {
    # Kafka never compacts the active segment (1 GiB or 7 days by default), and a restarted worker
    # reads every record of its changelog: with the defaults that was every write ever made (416 MB
    # for a ~20 MB state in BENCHMARKS.md). Small segments that roll every minute, cleaned once 5%
    # of the log is dirty, keep the log near its live state.
    "segment.ms": str(60 * 1000),
    "segment.bytes": str(16 * 2**20),
    "min.cleanable.dirty.ratio": "0.05",
}
"""Configuration of table changelog topics, so a restart reads about the live state."""


def changelog(app_id: str, table: str) -> TopicSpec:
    """The compacted changelog topic faust backs a table with; created by us, not by faust.

    Only topics that do not exist yet get ``CHANGELOG_CONFIGS``; an existing one keeps its own
    (``kafka-configs.sh --alter --add-config`` changes it in place, see docs/operations/upgrade.md).
    """
    return TopicSpec(f"{app_id}-{table}-changelog", compacted=True, configs=dict(CHANGELOG_CONFIGS))


async def ensure_topics(
    bootstrap: str,
    partitions: int,
    *,
    extra: tuple[TopicSpec, ...] = (),
    timeout_s: float = 60.0,
) -> list[str]:
    """Create every dxpulse topic (and ``extra``) that does not exist yet; returns those created.

    Workers call this before faust starts: a changelog topic faust creates itself can be seen by
    its consumer with no partitions yet, and the worker then fails with PartitionsMismatch.

    Retries the connection until ``timeout_s`` because it runs right after the broker starts.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            await admin.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in (*TOPICS, *extra) if spec.name not in existing]
        if missing:
            try:
                await admin.create_topics([spec.new_topic(partitions) for spec in missing])
            except TopicAlreadyExistsError:
                log.info("another process created the topics first")
            # Created is not yet known to the broker's metadata: a worker starting at once was
            # assigned none of its changelog's partitions ("Ignoring missing topic") and its agent
            # then failed on every message with PartitionsMismatch (seen with five services
            # starting together on two cores).
            names = [spec.name for spec in missing]
            while not set(names) <= set(await admin.list_topics()):
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"topics created but not in Kafka's metadata: {names}")
                await asyncio.sleep(0.1)
        return [spec.name for spec in missing]
    finally:
        await admin.close()
