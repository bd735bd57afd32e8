"""The Kafka topics dxpulse owns: created up front with explicit partitions, replicas and policies."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError, for_code
from aiokafka.partitioner import murmur2

from dxpulse.kafka.security import PLAINTEXT, KafkaSecurity
from dxpulse.settings import CommonSettings

log = logging.getLogger(__name__)

REPORTS = "dxpulse.reports.v1"
"""Raw reports from local systems, keyed ``indicator|period`` so one worker owns an (indicator, period)."""
ROLLUPS = "dxpulse.rollups.v1"
"""National rollups, keyed ``indicator|period|scope``; compacted, so a replay shows the latest of each."""
ALERTS = "dxpulse.alerts.v1"
"""Alert transitions (firing/resolved), keyed by alert fingerprint."""
DEAD_LETTERS = "dxpulse.reports.deadletter.v1"
"""Raw messages the pipeline could not accept, with the reason and the original bytes."""


@functools.lru_cache(maxsize=1 << 16)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition a keyed message goes to: Kafka's default partitioner (murmur2), as the Java
    clients, aiokafka and so faust all use it. Remembered per key: reports are keyed
    ``indicator|period``, a few keys again and again, and aiokafka's murmur2 is pure Python."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


MIN_INSYNC_REPLICAS = "min.insync.replicas"
"""The topic configuration of how many replicas need a write before ``acks=all`` acknowledges it."""


@dataclass(frozen=True)
class Replication:
    """How many copies of each partition Kafka keeps, and how many must have a write before it is
    acknowledged to a producer that asks for all (``acks=all``, as every dxpulse producer does)."""

    factor: int = 1
    min_insync: int = 1

    @classmethod
    def of(cls, settings: CommonSettings) -> Replication:
        """``DXPULSE_REPLICATION_FACTOR`` and ``DXPULSE_MIN_INSYNC_REPLICAS``."""
        return cls(settings.replication_factor, settings.min_insync_replicas)


@dataclass(frozen=True)
class TopicSpec:
    """One topic's name and the configuration it is created with.

    ``partitions`` is for a topic whose count is fixed; the others get ``DXPULSE_TOPIC_PARTITIONS``.
    """

    name: str
    compacted: bool = False
    configs: dict[str, str] = field(default_factory=dict)
    partitions: int | None = None

    def partitions_or(self, default: int) -> int:
        return default if self.partitions is None else self.partitions

    def new_topic(self, partitions: int, replication: Replication = Replication()) -> NewTopic:
        configs = {
            "cleanup.policy": "compact" if self.compacted else "delete",
            MIN_INSYNC_REPLICAS: str(replication.min_insync),
            **self.configs,
        }
        return NewTopic(self.name, self.partitions_or(partitions), replication.factor, topic_configs=configs)


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


def leader_topic(app_id: str) -> TopicSpec:
    """The one-partition topic faust's partition assignor elects a leader worker with.

    Created by us like the changelogs, so that it has the replication and ``min.insync.replicas``
    of every other topic: faust would create it with no topic configuration.
    """
    return TopicSpec(f"{app_id}-__assignor-__leader", partitions=1)


@dataclass(frozen=True)
class TopicState:
    """What Kafka says of one existing topic: its partitions, the fewest replicas any of them has,
    and its ``min.insync.replicas`` (None when unknown)."""

    name: str
    partitions: int
    replicas: int
    min_insync: int | None = None


DESCRIBE_ATTEMPTS = 50
"""How often a topic's description is asked while a broker answers an error (0.1 s apart)."""


class TopicLayoutError(Exception):
    """Existing topics or the cluster do not match the settings; one line per problem.

    ``live_brokers``: how many brokers the answering broker's metadata listed, so a caller that
    has just started more of them can tell a cluster still assembling from a wrong layout.
    """

    def __init__(self, problems: str, live_brokers: int) -> None:
        super().__init__(problems)
        self.live_brokers = live_brokers


def layout_problems(
    specs: Sequence[TopicSpec],
    existing: Mapping[str, TopicState],
    *,
    partitions: int,
    replication: Replication,
    brokers: int,
) -> list[str]:
    """What stops a process from starting on this cluster, one line each naming the fix.

    A topic with fewer replicas, fewer partitions or a lower ``min.insync.replicas`` than the
    settings ask for, and a cluster with fewer live brokers than the replication factor when a
    topic must be created or moved. Once every topic has its replicas, a broker that is down is
    not a problem: that is what the replicas are for.
    """
    problems: list[str] = []
    missing = False
    for spec in specs:
        state = existing.get(spec.name)
        if state is None:
            missing = True
            continue
        if state.replicas < replication.factor:
            problems.append(
                f"topic {spec.name} has replication factor {state.replicas} but"
                f" DXPULSE_REPLICATION_FACTOR is {replication.factor}: increase it with"
                " kafka-reassign-partitions.sh or recreate the topic"
            )
        wanted = spec.partitions_or(partitions)
        if state.partitions < wanted:
            # Keyed topics: more partitions would move keys (and their state) between workers.
            problems.append(
                f"topic {spec.name} has {state.partitions} partitions but DXPULSE_TOPIC_PARTITIONS is"
                f" {wanted}: set DXPULSE_TOPIC_PARTITIONS={state.partitions} (a keyed topic's partitions"
                " must not change, docs/operations/upgrade.md)"
            )
        if state.min_insync is not None and state.min_insync < replication.min_insync:
            problems.append(
                f"topic {spec.name} has {MIN_INSYNC_REPLICAS} {state.min_insync} but"
                f" DXPULSE_MIN_INSYNC_REPLICAS is {replication.min_insync}: raise it with kafka-configs.sh"
                f" --alter --entity-type topics --entity-name {spec.name}"
                f" --add-config {MIN_INSYNC_REPLICAS}={replication.min_insync}"
            )
    if brokers < replication.factor and (missing or problems):
        problems.insert(
            0,
            f"the Kafka cluster has {brokers} live broker{'s' if brokers != 1 else ''} but"
            f" DXPULSE_REPLICATION_FACTOR is {replication.factor}: start more brokers or lower"
            " DXPULSE_REPLICATION_FACTOR",
        )
    return problems


def topic_states(
    described: Sequence[Mapping[str, Any]], min_insync: Mapping[str, int]
) -> dict[str, TopicState]:
    """``TopicState`` of each topic aiokafka's ``describe_topics`` found (error code 0)."""
    return {
        topic["topic"]: TopicState(
            topic["topic"],
            len(topic["partitions"]),
            min((len(p["replicas"]) for p in topic["partitions"]), default=0),
            min_insync.get(topic["topic"]),
        )
        for topic in described
        if topic["error_code"] == 0
    }


async def _describe(admin: AIOKafkaAdminClient, names: Sequence[str]) -> list[Any]:
    """``describe_topics``, asked again while it answers an error for a topic.

    Metadata reaches each broker on its own: one that does not know yet a topic another just
    listed answers "unknown topic" for it, for a few milliseconds after its creation.
    """
    for _ in range(DESCRIBE_ATTEMPTS):
        described: list[Any] = await admin.describe_topics(list(names))
        if all(topic["error_code"] == 0 for topic in described):
            break
        await asyncio.sleep(0.1)
    return described


async def min_insync_replicas(admin: AIOKafkaAdminClient, names: Sequence[str]) -> dict[str, int]:
    """Each topic's effective ``min.insync.replicas`` (its own, else the broker's default)."""
    if not names:
        return {}
    wanted = {MIN_INSYNC_REPLICAS: None}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, wanted) for name in names]
    found: dict[str, int] = {}
    for response in await admin.describe_configs(resources):
        for error, _message, _type, name, entries in response.resources:
            for key, value, *_ in entries if error == 0 else ():
                if key == MIN_INSYNC_REPLICAS:
                    found[name] = int(value)
    return found


def created_already(topic_errors: Sequence[Sequence[Any]]) -> set[str]:
    """The topics a CreateTopics answer says exist already; raises on any other error.

    aiokafka returns the answer as it is, one (topic, error code[, message]) per topic.
    """
    existed = set()
    for name, code, *message in topic_errors:
        if code == TopicAlreadyExistsError.errno:
            existed.add(name)
        elif code != 0:
            raise for_code(code)(f"creating topic {name}: {' '.join(map(str, message))}".strip())
    return existed


async def check_layout(
    admin: AIOKafkaAdminClient,
    specs: Sequence[TopicSpec],
    partitions: int,
    replication: Replication,
    *,
    known: bool = False,
) -> set[str]:
    """Raise ``TopicLayoutError`` on any of ``layout_problems``; returns the names that exist.

    ``known``: every one of ``specs`` is known to exist, whatever the broker asked lists.
    """
    names = [spec.name for spec in specs]
    existing = set(names) if known else set(await admin.list_topics()) & set(names)
    described = await _describe(admin, sorted(existing)) if existing else []
    states = topic_states(described, await min_insync_replicas(admin, sorted(existing)))
    brokers = len((await admin.describe_cluster())["brokers"])
    problems = layout_problems(specs, states, partitions=partitions, replication=replication, brokers=brokers)
    if problems:
        raise TopicLayoutError("\n".join(problems), brokers)
    if brokers < replication.factor:
        log.warning(
            "%d live brokers for %d replicas of every partition: writes go on while %d are in sync",
            brokers,
            replication.factor,
            replication.min_insync,
        )
    return set(states)


async def ensure_topics(
    bootstrap: str,
    partitions: int,
    *,
    extra: tuple[TopicSpec, ...] = (),
    replication: Replication = Replication(),
    security: KafkaSecurity = PLAINTEXT,
    timeout_s: float = 60.0,
) -> list[str]:
    """Check the existing dxpulse topics (and ``extra``) against the settings, then create the
    missing ones; returns those created.

    Raises ``TopicLayoutError`` when an existing topic or the cluster cannot give what
    ``partitions`` and ``replication`` ask for (``layout_problems``), so a process refuses to start.

    Workers call this before faust starts: a changelog topic faust creates itself can be seen by
    its consumer with no partitions yet, and the worker then fails with PartitionsMismatch.

    Retries the connection until ``timeout_s`` because it runs right after the broker starts.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.client_kwargs())
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            await admin.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
    try:
        specs = (*TOPICS, *extra)
        existing = await check_layout(admin, specs, partitions, replication)
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            new = [spec.new_topic(partitions, replication) for spec in missing]
            existed = created_already((await admin.create_topics(new)).topic_errors)
            if existed:
                # Created by another process meanwhile, or earlier but not yet known to the broker
                # that listed the topics: either way they must pass the check as they are.
                log.info("topics %s existed already: checking them", ", ".join(sorted(existed)))
                raced = [spec for spec in missing if spec.name in existed]
                await check_layout(admin, raced, partitions, replication, known=True)
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
