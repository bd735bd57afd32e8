"""The services' garbage-collector setup: start-up frozen, thresholds from settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from dxpulse.gc_tuning import DEFAULT_THRESHOLDS, tune_gc
from dxpulse.settings import ServiceSettings
from services.aggregate.settings import AggregateSettings
from services.ingest.settings import IngestSettings
from services.query.settings import QuerySettings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_start_up_and_sets_thresholds() -> None:
    made_at_start: list[object] = []
    tune_gc((12_345, 6, 7))
    made_later: list[object] = []
    assert gc.get_threshold() == (12_345, 6, 7)
    assert gc.get_freeze_count() > 0
    # gc.get_objects() lists the generations a collection walks; frozen objects are in none of them.
    walked = {id(o) for o in gc.get_objects()}
    assert id(made_later) in walked
    assert id(made_at_start) not in walked


def test_every_service_reads_its_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().gc_thresholds == DEFAULT_THRESHOLDS
    monkeypatch.setenv("DXPULSE_GC_THRESHOLDS", "[700, 10, 10]")
    for settings in (IngestSettings, QuerySettings, AggregateSettings):
        assert settings().gc_thresholds == (700, 10, 10)


@pytest.mark.parametrize("value", ["[-1, 10, 10]", "[700, 10]", "700"])
def test_bad_thresholds_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DXPULSE_GC_THRESHOLDS", value)
    with pytest.raises(ValidationError, match="gc_thresholds"):
        ServiceSettings()
