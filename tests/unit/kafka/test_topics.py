"""ensure_topics: checks existing topics against the settings, then creates the missing, replicated."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import InvalidReplicationFactorError
from pydantic import ValidationError

import dxpulse.faust_engine.support
import dxpulse.kafka.topics
from dxpulse.faust_engine.support import run_worker
from dxpulse.kafka.topics import (
    TOPICS,
    Replication,
    TopicLayoutError,
    TopicSpec,
    TopicState,
    changelog,
    created_already,
    ensure_topics,
    layout_problems,
    leader_topic,
    topic_states,
)
from dxpulse.settings import CommonSettings, WorkerSettings

REPORTS = TOPICS[0].name


@dataclass
class _Broker:
    """A broker whose metadata lists created topics only from the third listing after creating."""

    existing: dict[str, TopicState] = field(default_factory=dict)
    created: list[Any] = field(default_factory=list)
    listings_after_create: int | None = None
    brokers: int = 1
    unknown_to_describe: int = 0
    """How many of the next descriptions answer "unknown topic" (a broker not caught up yet)."""
    unlisted: set[str] = field(default_factory=set)
    """Topics that exist but the broker asked does not list yet."""

    def admin(self, **_: Any) -> _Admin:
        return _Admin(self)


@dataclass
class _Admin:
    broker: _Broker

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def create_topics(self, topics: list[Any]) -> SimpleNamespace:
        # As Kafka answers: each topic on its own, an error code per topic (36: it exists).
        existing = set(self.broker.existing)
        self.broker.created = [topic for topic in topics if topic.name not in existing]
        self.broker.listings_after_create = 0
        return SimpleNamespace(topic_errors=[(t.name, 36 if t.name in existing else 0, "") for t in topics])

    async def list_topics(self) -> list[str]:
        broker = self.broker
        if broker.listings_after_create is not None:
            broker.listings_after_create += 1
            if broker.listings_after_create >= 3:
                for topic in broker.created:
                    broker.existing[topic.name] = TopicState(
                        topic.name, topic.num_partitions, topic.replication_factor
                    )
        return sorted(set(broker.existing) - broker.unlisted)

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        if self.broker.unknown_to_describe:
            self.broker.unknown_to_describe -= 1
            return [{"topic": name, "error_code": 3, "partitions": []} for name in names]
        return [
            {
                "topic": name,
                "error_code": 0,
                "partitions": [
                    {"partition": p, "replicas": list(range(self.broker.existing[name].replicas))}
                    for p in range(self.broker.existing[name].partitions)
                ],
            }
            for name in names
        ]

    async def describe_configs(self, resources: list[Any]) -> list[Any]:
        entries = [
            (0, "", 2, r.name, [("min.insync.replicas", str(self.broker.existing[r.name].min_insync or 1))])
            for r in resources
        ]
        return [SimpleNamespace(resources=entries)]

    async def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{"node_id": n} for n in range(self.broker.brokers)]}


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> _Broker:
    made = _Broker()
    monkeypatch.setattr(dxpulse.kafka.topics, "AIOKafkaAdminClient", made.admin)
    return made


async def test_created_topics_are_in_the_metadata_before_it_returns(broker: _Broker) -> None:
    extra = TopicSpec("dxpulse-test-table-changelog", compacted=True)
    created = await ensure_topics("kafka:9092", 6, extra=(extra,))
    assert created == [*(t.name for t in TOPICS), extra.name]
    assert broker.listings_after_create == 3  # it waited for the broker to list them
    assert set(created) <= set(broker.existing)


async def test_topics_are_created_with_the_replication_of_the_settings(broker: _Broker) -> None:
    broker.brokers = 3
    app = "dxpulse-aggregate"
    extra = (changelog(app, "state"), leader_topic(app))
    await ensure_topics("kafka:9092", 6, extra=extra, replication=Replication(3, 2))
    made = {topic.name: topic for topic in broker.created}
    assert {t.replication_factor for t in made.values()} == {3}
    assert {t.topic_configs["min.insync.replicas"] for t in made.values()} == {"2"}
    assert made[f"{app}-__assignor-__leader"].num_partitions == 1
    assert made[f"{app}-state-changelog"].num_partitions == 6
    assert made[f"{app}-state-changelog"].topic_configs["cleanup.policy"] == "compact"


async def test_an_existing_topic_with_fewer_replicas_stops_the_start(broker: _Broker) -> None:
    broker.brokers = 3
    broker.existing = {spec.name: TopicState(spec.name, 6, 3, 2) for spec in TOPICS}
    broker.existing[REPORTS] = TopicState(REPORTS, 6, 1, 1)
    with pytest.raises(TopicLayoutError) as raised:
        await ensure_topics("kafka:9092", 6, replication=Replication(3, 2))
    assert str(raised.value).splitlines() == [
        f"topic {REPORTS} has replication factor 1 but DXPULSE_REPLICATION_FACTOR is 3: increase it with"
        " kafka-reassign-partitions.sh or recreate the topic",
        f"topic {REPORTS} has min.insync.replicas 1 but DXPULSE_MIN_INSYNC_REPLICAS is 2: raise it with"
        f" kafka-configs.sh --alter --entity-type topics --entity-name {REPORTS}"
        " --add-config min.insync.replicas=2",
    ]
    assert broker.created == []  # refused before creating anything


async def test_a_topic_a_broker_does_not_know_yet_is_described_again(broker: _Broker) -> None:
    broker.existing = {spec.name: TopicState(spec.name, 6, 1, 1) for spec in TOPICS}
    broker.unknown_to_describe = 2
    with pytest.raises(TopicLayoutError, match=f"topic {REPORTS} has replication factor 1"):
        await ensure_topics("kafka:9092", 6, replication=Replication(3, 1))
    assert broker.unknown_to_describe == 0


async def test_a_topic_the_listing_broker_did_not_know_yet_is_checked_too(broker: _Broker) -> None:
    broker.brokers = 3
    broker.existing = {spec.name: TopicState(spec.name, 6, 3, 1) for spec in TOPICS}
    broker.existing[REPORTS] = TopicState(REPORTS, 6, 1, 1)
    broker.unlisted = {REPORTS}  # created a moment ago by another process; this broker lags
    with pytest.raises(TopicLayoutError, match=f"^topic {REPORTS} has replication factor 1"):
        await ensure_topics("kafka:9092", 6, replication=Replication(3, 1))


def test_an_error_creating_a_topic_is_raised() -> None:
    assert created_already([("a", 0, None), ("b", 36, "Topic 'b' already exists.")]) == {"b"}
    with pytest.raises(InvalidReplicationFactorError, match="creating topic c: only 1 broker"):
        created_already([("a", 0, None), ("c", 38, "only 1 broker")])


def test_a_worker_refuses_to_start_with_one_line_per_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*_: Any, **__: Any) -> list[str]:
        raise TopicLayoutError("topic x has replication factor 1 but DXPULSE_REPLICATION_FACTOR is 3: ...", 3)

    monkeypatch.setattr(dxpulse.faust_engine.support, "ensure_topics", refuse)
    app = SimpleNamespace(conf=SimpleNamespace(id="dxpulse-history"))
    with pytest.raises(SystemExit) as exited:
        run_worker(app, WorkerSettings(kafka_bootstrap="localhost:1"), ())  # type: ignore[arg-type]
    assert str(exited.value) == (
        "dxpulse-history refuses to start: topic x has replication factor 1 but DXPULSE_REPLICATION_FACTOR"
        " is 3: ..."
    )


# --- the decision, from metadata and settings alone --------------------------------------------

SPECS = (TopicSpec("t.a"), TopicSpec("t.b", compacted=True), leader_topic("app"))
GOOD = {
    "t.a": TopicState("t.a", 6, 3, 2),
    "t.b": TopicState("t.b", 6, 3, 2),
    "app-__assignor-__leader": TopicState("app-__assignor-__leader", 1, 3, 2),
}


def problems(existing: dict[str, TopicState], *, brokers: int = 3, isr: int = 2) -> list[str]:
    """The problems of ``existing`` with replication factor 3 and 6 partitions."""
    return layout_problems(SPECS, existing, partitions=6, replication=Replication(3, isr), brokers=brokers)


def test_topics_as_the_settings_want_are_no_problem() -> None:
    assert problems(GOOD) == []
    # More partitions, replicas or in-sync replicas than asked for are not a problem either.
    assert problems({**GOOD, "t.a": TopicState("t.a", 12, 5, 3)}) == []
    # Missing topics are created, on enough brokers.
    assert problems({}) == []


def test_fewer_replicas_than_the_setting() -> None:
    assert problems({**GOOD, "t.b": TopicState("t.b", 6, 1, 1)}, isr=1) == [
        "topic t.b has replication factor 1 but DXPULSE_REPLICATION_FACTOR is 3: increase it with"
        " kafka-reassign-partitions.sh or recreate the topic"
    ]


def test_fewer_partitions_than_the_setting() -> None:
    assert problems({**GOOD, "t.a": TopicState("t.a", 3, 3, 2)}) == [
        "topic t.a has 3 partitions but DXPULSE_TOPIC_PARTITIONS is 6: set DXPULSE_TOPIC_PARTITIONS=3"
        " (a keyed topic's partitions must not change, docs/operations/upgrade.md)"
    ]


def test_a_topic_of_fixed_partitions_is_not_held_to_the_setting() -> None:
    assert problems(GOOD) == []  # the leader topic has 1 partition, DXPULSE_TOPIC_PARTITIONS is 6


def test_lower_min_insync_replicas_than_the_setting() -> None:
    (problem,) = problems({**GOOD, "t.a": TopicState("t.a", 6, 3, 1)})
    assert problem.startswith("topic t.a has min.insync.replicas 1 but DXPULSE_MIN_INSYNC_REPLICAS is 2:")
    assert problem.endswith("--entity-name t.a --add-config min.insync.replicas=2")
    # Unknown (not readable) is not held against the topic.
    assert problems({**GOOD, "t.a": TopicState("t.a", 6, 3, None)}) == []


def test_fewer_brokers_than_the_replication_factor() -> None:
    brokers = (
        "the Kafka cluster has 1 live broker but DXPULSE_REPLICATION_FACTOR is 3: start more brokers or"
        " lower DXPULSE_REPLICATION_FACTOR"
    )
    # A topic to create: it cannot get its replicas.
    assert problems({}, brokers=1) == [brokers]
    # Topics with too few replicas cannot be given more on so few brokers: both are said.
    assert problems({**GOOD, "t.a": TopicState("t.a", 6, 1, 2)}, brokers=1)[0] == brokers
    assert len(problems({**GOOD, "t.a": TopicState("t.a", 6, 1, 2)}, brokers=1)) == 2


def test_a_dead_broker_does_not_stop_a_start_once_every_topic_has_its_replicas() -> None:
    assert problems(GOOD, brokers=2) == []


def test_topic_states_take_the_fewest_replicas_of_any_partition() -> None:
    described = [
        {
            "topic": "t.a",
            "error_code": 0,
            "partitions": [{"replicas": [1, 2, 3]}, {"replicas": [2, 3]}, {"replicas": [3, 1, 2]}],
        },
        {"topic": "t.gone", "error_code": 3, "partitions": []},
    ]
    assert topic_states(described, {"t.a": 2}) == {"t.a": TopicState("t.a", 3, 2, 2)}


def test_replication_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DXPULSE_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("DXPULSE_MIN_INSYNC_REPLICAS", "2")
    assert Replication.of(CommonSettings()) == Replication(3, 2)
    monkeypatch.delenv("DXPULSE_REPLICATION_FACTOR")
    monkeypatch.delenv("DXPULSE_MIN_INSYNC_REPLICAS")
    assert Replication.of(CommonSettings()) == Replication(1, 1)


def test_more_in_sync_replicas_than_replicas_is_refused() -> None:
    with pytest.raises(ValidationError, match="DXPULSE_MIN_INSYNC_REPLICAS \\(3\\) is above"):
        CommonSettings(replication_factor=2, min_insync_replicas=3)


def test_new_topics_carry_min_insync_replicas_and_their_own_configs() -> None:
    spec = TopicSpec("t", compacted=True, configs={"min.cleanable.dirty.ratio": "0.1"})
    topic = spec.new_topic(6, Replication(3, 2))
    assert (topic.num_partitions, topic.replication_factor) == (6, 3)
    assert topic.topic_configs == {
        "cleanup.policy": "compact",
        "min.insync.replicas": "2",
        "min.cleanable.dirty.ratio": "0.1",
    }
    assert TopicSpec("t").new_topic(6).replication_factor == 1
