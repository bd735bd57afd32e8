"""Properties of batch application (``step_many``): the aggregator's batches change no final figure."""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

from hypothesis import given
from hypothesis import strategies as st

from dxpulse.catalog import default_catalog
from dxpulse.periods import parse_period
from dxpulse.registry import default_registry
from dxpulse.rollup import (
    PeriodState,
    apply,
    apply_all,
    compute_rollups,
    holds_snapshots,
    records_of,
    step_many,
)
from schemas import Report, Rollup
from tests.unit.conftest import COMPUTED_AT, feed, flag, last_per_scope, make_report
from tests.unit.test_rollup_properties import (
    PERIOD,
    PROPERTY_SETTINGS,
    _deliveries,
    _flag_values,
    _ratio_values,
)


def _feed_batches(
    batches: list[list[Report]], indicator_id: str
) -> tuple[PeriodState, list[list[Rollup]], int]:
    indicator = default_catalog()[indicator_id]
    period = parse_period(PERIOD, indicator.period_type)
    state = PeriodState()
    published = []
    changed = 0
    for batch in batches:
        state, fresh, n = step_many(state, batch, indicator, period, default_registry(), COMPUTED_AT)
        published.append(fresh)
        changed += n
    return state, published, changed


T = TypeVar("T")


def _split(reports: list[T], cuts: list[int]) -> list[list[T]]:
    bounds = sorted({0, len(reports), *(c % (len(reports) + 1) for c in cuts)})
    return [reports[a:b] for a, b in itertools.pairwise(bounds)]


@PROPERTY_SETTINGS
@given(
    st.sampled_from([("emc_connection", _flag_values()), ("online_records_rate", _ratio_values())]).flatmap(
        lambda pair: st.tuples(st.just(pair[0]), _deliveries(pair[0], pair[1]))
    ),
    st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_batches_end_in_the_state_and_figures_of_one_report_at_a_time(
    case: tuple[str, list[Report]], cuts: list[int]
) -> None:
    indicator, deliveries = case
    one_by_one, published = feed(deliveries, indicator, PERIOD)
    batched, batch_published, changed = _feed_batches(_split(deliveries, cuts), indicator)
    assert batched.latest == one_by_one.latest
    assert batched.published == one_by_one.published
    last, batch_last = last_per_scope(published), last_per_scope(batch_published)
    assert {s: r.revision for s, r in batch_last.items()} == {s: r.revision for s, r in last.items()}
    # A batch publishes each scope at most once.
    assert all(len({r.scope for r in fresh}) == len(fresh) for fresh in batch_published)
    assert 0 < changed <= len(deliveries)


def test_apply_all_names_only_reports_that_change_the_latest_values() -> None:
    first = make_report("province:01", flag(True), minutes=1)
    older = make_report("province:01", flag(False), minutes=0)
    other = make_report("province:79", flag(True))
    latest, changing = apply_all({}, [first, older, first, other])
    assert changing == [0, 3]
    assert latest is not None
    assert set(latest) == {"province:01", "province:79"}
    assert latest["province:01"].event_id == str(first.event_id)
    assert apply_all(latest, [older, first]) == (None, [])
    assert apply(latest, older) is None


def _step(
    state: PeriodState, reports: list[Report], offsets: list[int | None] | None = None
) -> tuple[PeriodState, list[Rollup]]:
    indicator = default_catalog()["online_records_rate"]
    period = parse_period(PERIOD, indicator.period_type)
    new, fresh, _ = step_many(state, reports, indicator, period, default_registry(), COMPUTED_AT, offsets)
    return new, fresh


Changelog = tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]
"""A table's view of one (indicator, period): its period record and its reporter records."""


def _write(
    changelog: Changelog, before: PeriodState, after: PeriodState, *, whole: bool = False
) -> Changelog:
    period, records = records_of(before, after, after.latest, whole=whole)
    return period, {**changelog[1], **records}


@PROPERTY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()), st.lists(st.integers(0, 40), max_size=6))
def test_the_records_of_each_batch_rebuild_the_state(deliveries: list[Report], cuts: list[int]) -> None:
    state = PeriodState()
    changelog: Changelog = (None, {})
    offset = 0
    for batch in _split(deliveries, cuts):
        offsets: list[int | None] = list(range(offset, offset + len(batch)))
        offset += len(batch)
        new, _ = _step(state, batch, offsets)
        period, records = records_of(state, new, [r.reporter for r in batch])
        changelog = (period, {**changelog[1], **records})
        state = new
        # Only the reporters the batch changed get a record.
        assert set(records) <= {r.reporter for r in batch}
        assert PeriodState.from_records(*changelog) == state
        assert [s.offset for s in PeriodState.from_records(*changelog).latest.values()] == [
            s.offset for s in state.latest.values()
        ]


@PROPERTY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()), st.integers(0, 20))
def test_a_whole_state_record_of_earlier_versions_is_migrated_to_reporter_records(
    deliveries: list[Report], cut: int
) -> None:
    middle = cut % (len(deliveries) + 1)
    before, _ = _step(PeriodState(), deliveries[:middle])
    legacy = before.to_json()
    assert holds_snapshots(legacy) == bool(before.latest)
    decoded = PeriodState.from_records(legacy, {})
    assert decoded == before
    after, _ = _step(decoded, deliveries[middle:])
    # The first write after the upgrade: every snapshot gets its record, and the period record keeps
    # them too until that is done; the next one is small again.
    first = _write((legacy, {}), decoded, after, whole=True)
    assert set(first[1]) == set(after.latest)
    assert PeriodState.from_records(first[0], {}) == after
    assert PeriodState.from_records(*first) == after
    assert not holds_snapshots(records_of(after, after, [])[0])


@PROPERTY_SETTINGS
@given(
    _deliveries("online_records_rate", _ratio_values()),
    st.integers(0, 20),
    st.integers(0, 30),
    st.lists(st.integers(0, 40), max_size=4),
)
def test_a_crash_after_any_prefix_of_a_batchs_records_still_publishes_the_final_figures(
    deliveries: list[Report], cut: int, written: int, recuts: list[int]
) -> None:
    middle = cut % (len(deliveries) + 1)
    offsets: list[int | None] = list(range(len(deliveries)))
    before, _ = _step(PeriodState(), deliveries[:middle], offsets[:middle])
    stored: Changelog = (before.period_record(), {r: s.to_json() for r, s in before.latest.items()})
    after, _ = _step(before, deliveries[middle:], offsets[middle:])
    period, records = records_of(before, after, [r.reporter for r in deliveries[middle:]])
    # Written in this order; the crash keeps a prefix, and none of the batch's rollups got out.
    writes: list[tuple[str | None, dict[str, Any]]] = [(None, period), *records.items()]
    kept = writes[: written % (len(writes) + 1)]
    recovered = PeriodState.from_records(
        next((value for name, value in kept if name is None), stored[0]),
        {**stored[1], **{name: value for name, value in kept if name is not None}},
    )
    # Redelivered from the batch's first offset, in batches cut anywhere.
    state, published = recovered, []
    for batch in _split(list(zip(deliveries[middle:], offsets[middle:], strict=True)), recuts):
        state, fresh = _step(state, [r for r, _ in batch], [o for _, o in batch])
        published.append(fresh)
    assert state.latest == after.latest
    # What the topic shows: the figures published before the batch, then those after the crash.
    shown = {**before.published, **{s: r.revision for s, r in last_per_scope(published).items()}}
    assert shown == {r.scope: r.revision for r in compute_rollups_of(after)} or not after.latest


def compute_rollups_of(state: PeriodState) -> list[Rollup]:
    indicator = default_catalog()["online_records_rate"]
    period = parse_period(PERIOD, indicator.period_type)
    return compute_rollups(indicator, period, state.latest, default_registry(), COMPUTED_AT)


def test_a_batch_holding_the_last_changing_report_again_resends_every_rollup() -> None:
    indicator = default_catalog()["emc_connection"]
    period = parse_period(PERIOD, indicator.period_type)
    first = make_report("province:01", flag(True), minutes=1)
    second = make_report("province:79", flag(True), minutes=2)

    def run(state: PeriodState, reports: list[Report], offsets: list[int | None]) -> tuple[PeriodState, int]:
        new, fresh, _ = step_many(state, reports, indicator, period, default_registry(), COMPUTED_AT, offsets)
        return new, len(fresh)

    state, published = run(PeriodState(), [first, second], [10, 11])
    assert state.last_offset == 11
    assert published == 3
    # Redelivered after a crash between changelog write and publish: every scope again.
    assert run(state, [first, second], [10, 11]) == (state, 3)
    # The same reports at other offsets (a resend) publish nothing.
    assert run(state, [first, second], [20, 21]) == (state, 0)
