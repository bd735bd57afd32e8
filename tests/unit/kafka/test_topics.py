"""ensure_topics: creates what is missing and returns only once Kafka's metadata lists it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

import dxpulse.kafka.topics
from dxpulse.kafka.topics import TOPICS, TopicSpec, ensure_topics


@dataclass
class _Broker:
    """A broker whose metadata lists created topics only from the third listing after creating."""

    existing: set[str] = field(default_factory=set)
    created: list[str] = field(default_factory=list)
    listings_after_create: int | None = None

    def admin(self, **_: Any) -> _Admin:
        return _Admin(self)


@dataclass
class _Admin:
    broker: _Broker

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def create_topics(self, topics: list[Any]) -> None:
        self.broker.created = [t.name for t in topics]
        self.broker.listings_after_create = 0

    async def list_topics(self) -> list[str]:
        broker = self.broker
        if broker.listings_after_create is not None:
            broker.listings_after_create += 1
            if broker.listings_after_create >= 3:
                broker.existing |= set(broker.created)
        return sorted(broker.existing)


async def test_created_topics_are_in_the_metadata_before_it_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    broker = _Broker()
    monkeypatch.setattr(dxpulse.kafka.topics, "AIOKafkaAdminClient", broker.admin)
    extra = TopicSpec("dxpulse-test-table-changelog", compacted=True)
    created = await ensure_topics("kafka:9092", 6, extra=(extra,))
    assert created == [*(t.name for t in TOPICS), extra.name]
    assert broker.listings_after_create == 3  # it waited for the broker to list them
    assert set(created) <= broker.existing
