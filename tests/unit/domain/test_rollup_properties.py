"""Property tests: feeding reports one by one through ``step`` equals a simple batch recomputation.

Sequences contain duplicates (the same event re-sent), late older observations, restatements and
ties on observation time, in any order. The oracle below does not use dxpulse.domain.rollup.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from dxpulse.domain.rollup import PeriodState
from schemas import FlagValue, RatioValue, Report, ReportValue, Rollup
from tests.unit.conftest import OBSERVED, feed, last_per_scope

PERIOD = "2024-H1"
MINISTRIES = ("ministry:MIC", "ministry:MOF", "ministry:MOH")
PROVINCES = ("province:01", "province:58", "province:79")
REPORTERS = MINISTRIES + PROVINCES
EXPECTED_SIZE = {"ministries_with_procedures": 21, "provinces": 63, "national": 84}
"""Seed 004 / DOMAIN.md: 21 ministries with procedures and 63 provinces in 2024."""
SCOPE_MEMBERS = {
    "ministries_with_procedures": set(MINISTRIES),
    "provinces": set(PROVINCES),
    "national": set(REPORTERS),
}

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)
SECONDARY_SETTINGS = settings(max_examples=100, deadline=None)


def _flag_values() -> st.SearchStrategy[ReportValue]:
    return st.builds(FlagValue, value=st.booleans())


@st.composite
def _ratio_values(draw: st.DrawFn) -> ReportValue:
    # Whole numbers, as records are counted: float sums are then exact in any order.
    denominator = draw(st.integers(min_value=0, max_value=10_000))
    numerator = draw(st.integers(min_value=0, max_value=denominator))
    return RatioValue(numerator=numerator, denominator=denominator)


@st.composite
def _events(draw: st.DrawFn, indicator: str, values: st.SearchStrategy[ReportValue]) -> list[Report]:
    """Distinct events, with few distinct observation times so restatements and ties are common."""
    n = draw(st.integers(min_value=1, max_value=14))
    ids = draw(st.lists(st.uuids(), min_size=n, max_size=n, unique=True))
    return [
        Report(
            event_id=event_id,
            reporter=draw(st.sampled_from(REPORTERS)),
            indicator=indicator,
            period=PERIOD,
            observed_at=OBSERVED + timedelta(minutes=draw(st.integers(min_value=0, max_value=4))),
            value=draw(values),
        )
        for event_id in ids
    ]


@st.composite
def _deliveries(draw: st.DrawFn, indicator: str, values: st.SearchStrategy[ReportValue]) -> list[Report]:
    """Events plus re-sent copies of some of them, shuffled."""
    events = draw(_events(indicator, values))
    resent = draw(st.lists(st.sampled_from(events), max_size=6))
    return list(draw(st.permutations(events + resent)))


# --- the oracle ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    numerator: float
    denominator: float | None
    value: float | None
    reported: tuple[str, ...]
    latest_observed_at: datetime | None
    lagging_among_sampled: tuple[str, ...]


def _winners(reports: list[Report]) -> dict[str, Report]:
    """Per reporter, the report with the greatest (observed_at, event id)."""
    by_reporter: dict[str, list[Report]] = defaultdict(list)
    for report in reports:
        by_reporter[report.reporter].append(report)
    return {
        reporter: max(group, key=lambda r: (r.observed_at, str(r.event_id)))
        for reporter, group in by_reporter.items()
    }


def _flag_oracle(reports: list[Report]) -> dict[str, Figure]:
    winners = _winners(reports)
    figures = {}
    for scope, members in SCOPE_MEMBERS.items():
        mine = {r: w for r, w in winners.items() if r in members}
        true = sorted(r for r, w in mine.items() if isinstance(w.value, FlagValue) and w.value.value)
        figures[scope] = Figure(
            numerator=len(true),
            denominator=EXPECTED_SIZE[scope],
            value=len(true) / EXPECTED_SIZE[scope],
            reported=tuple(sorted(mine)),
            latest_observed_at=max((w.observed_at for w in mine.values()), default=None),
            lagging_among_sampled=tuple(sorted(members - set(true))),
        )
    return figures


def _ratio_oracle(reports: list[Report]) -> dict[str, Figure]:
    winners = _winners(reports)
    figures = {}
    for scope, members in SCOPE_MEMBERS.items():
        mine = {r: w for r, w in winners.items() if r in members}
        numerator = 0.0
        denominator = 0.0
        for w in mine.values():
            assert isinstance(w.value, RatioValue)
            numerator += w.value.numerator
            denominator += w.value.denominator
        figures[scope] = Figure(
            numerator=numerator,
            denominator=denominator,
            value=numerator / denominator if denominator else None,
            reported=tuple(sorted(mine)),
            latest_observed_at=max((w.observed_at for w in mine.values()), default=None),
            lagging_among_sampled=(),
        )
    return figures


def _as_figure(rollup: Rollup) -> Figure:
    return Figure(
        numerator=rollup.numerator,
        denominator=rollup.denominator,
        value=rollup.value,
        reported=tuple(sorted(set(SCOPE_MEMBERS[rollup.scope]) - set(rollup.not_reported))),
        latest_observed_at=rollup.latest_observed_at,
        lagging_among_sampled=tuple(r for r in rollup.lagging if r in REPORTERS),
    )


def _check_against_oracle(deliveries: list[Report], indicator: str, oracle: dict[str, Figure]) -> PeriodState:
    state, published = feed(deliveries, indicator, PERIOD)
    last = last_per_scope(published)
    assert set(last) == set(oracle)
    for scope, rollup in last.items():
        assert _as_figure(rollup) == oracle[scope], scope
        assert rollup.reporters_reported == len(oracle[scope].reported)
        assert rollup.reporters_expected == EXPECTED_SIZE[scope]
        assert state.published[scope] == rollup.revision
    return state


# --- properties ----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(_deliveries("emc_connection", _flag_values()))
def test_incremental_flag_rollups_equal_batch_recomputation(deliveries: list[Report]) -> None:
    oracle = _flag_oracle(deliveries)
    _check_against_oracle(deliveries, "emc_connection", oracle)
    for scope, figure in oracle.items():
        # Everyone expected but not true is lagging: the 18 / 60 / 78 units never sampled, too.
        assert EXPECTED_SIZE[scope] - figure.numerator >= len(figure.lagging_among_sampled)


@PROPERTY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()))
def test_incremental_ratio_rollups_equal_batch_recomputation(deliveries: list[Report]) -> None:
    _check_against_oracle(deliveries, "online_records_rate", _ratio_oracle(deliveries))


@SECONDARY_SETTINGS
@given(_deliveries("emc_connection", _flag_values()), st.data())
def test_flag_final_state_is_independent_of_delivery_order(
    deliveries: list[Report], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(deliveries))
    first, _ = feed(deliveries, "emc_connection", PERIOD)
    second, _ = feed(shuffled, "emc_connection", PERIOD)
    assert first.latest == second.latest
    assert first.published == second.published


@SECONDARY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()), st.data())
def test_ratio_final_state_is_independent_of_delivery_order(
    deliveries: list[Report], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(deliveries))
    first, _ = feed(deliveries, "online_records_rate", PERIOD)
    second, _ = feed(shuffled, "online_records_rate", PERIOD)
    assert first.latest == second.latest
    assert first.published == second.published


@SECONDARY_SETTINGS
@given(_deliveries("emc_connection", _flag_values()), st.data())
def test_replaying_the_whole_log_again_publishes_nothing(
    deliveries: list[Report], data: st.DataObject
) -> None:
    state, _ = feed(deliveries, "emc_connection", PERIOD)
    replay = data.draw(st.permutations(deliveries))
    after, published = feed(replay, "emc_connection", PERIOD, state)
    assert after == state
    assert all(batch == [] for batch in published)


@SECONDARY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()))
def test_state_survives_a_json_round_trip_mid_stream(deliveries: list[Report]) -> None:
    middle = len(deliveries) // 2
    uninterrupted, _ = feed(deliveries, "online_records_rate", PERIOD)
    head, _ = feed(deliveries[:middle], "online_records_rate", PERIOD)
    resumed, _ = feed(
        deliveries[middle:], "online_records_rate", PERIOD, PeriodState.from_json(head.to_json())
    )
    assert resumed == uninterrupted


def test_oracle_picks_greatest_event_id_on_equal_observation_times() -> None:
    low = UUID(int=1)
    high = UUID(int=2)
    reports = [
        Report(
            event_id=event_id,
            reporter="province:01",
            indicator="emc_connection",
            period=PERIOD,
            observed_at=OBSERVED,
            value=FlagValue(value=value),
        )
        for event_id, value in ((high, True), (low, False))
    ]
    assert _flag_oracle(reports)["provinces"].numerator == 1
    _check_against_oracle(reports, "emc_connection", _flag_oracle(reports))
