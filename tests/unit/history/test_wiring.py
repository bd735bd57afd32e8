"""The history writer's wiring: its own consumer group over reports and rollups; none in the aggregator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import faust
import pytest

from dxpulse.faust_engine.support import discard_unstarted
from dxpulse.kafka.topics import REPORTS, ROLLUPS
from services.aggregate.app import create_app as create_aggregate_app
from services.aggregate.settings import AggregateSettings
from services.history.app import create_app as create_history_app
from services.history.settings import HistorySettings


def _subscribed(app: faust.App) -> set[str]:
    """The topics the app's consumer subscribes to: its agents' (added when they start) and those
    taken in batches (added at once)."""
    agents = {topic for agent in app.agents.values() for topic in cast(faust.TopicT, agent.channel).topics}
    return agents | {topic for channel in app.topics for topic in channel.topics}


def _closed(app: faust.App) -> None:
    discard_unstarted(app)


@pytest.fixture
def history_app(tmp_path: Path) -> Iterator[faust.App]:
    made = create_history_app(HistorySettings(kafka_bootstrap="localhost:1", state_dir=tmp_path))
    yield made
    _closed(made)


async def test_history_writer_reads_reports_and_rollups_in_a_group_of_its_own(history_app: faust.App) -> None:
    assert history_app.conf.id == "dxpulse-history"
    # Both topics in batches straight from the consumer (faust's per-message streams were its limit).
    assert not history_app.agents
    assert set(cast(Any, history_app).message_batches) == {REPORTS, ROLLUPS}
    assert _subscribed(history_app) == {REPORTS, ROLLUPS}
    assert not history_app.tables  # nothing to recover at start


async def test_aggregator_leaves_postgresql_to_the_history_writer(tmp_path: Path) -> None:
    app = create_aggregate_app(AggregateSettings(kafka_bootstrap="localhost:1", state_dir=tmp_path))
    try:
        assert not app.agents
        assert _subscribed(app) == {REPORTS}
        assert "history_enabled" not in AggregateSettings.model_fields
    finally:
        _closed(app)
