"""Properties of batch application (``step_many``): the aggregator's batches change no final figure."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from dxpulse.catalog import default_catalog
from dxpulse.periods import parse_period
from dxpulse.registry import default_registry
from dxpulse.rollup import PeriodState, apply, apply_all, step_many
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


def _split(reports: list[Report], cuts: list[int]) -> list[list[Report]]:
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


def _step(state: PeriodState, reports: list[Report]) -> PeriodState:
    indicator = default_catalog()["online_records_rate"]
    period = parse_period(PERIOD, indicator.period_type)
    return step_many(state, reports, indicator, period, default_registry(), COMPUTED_AT)[0]


@PROPERTY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()), st.integers(min_value=0, max_value=20))
def test_a_record_reusing_unchanged_entries_equals_a_full_one(deliveries: list[Report], cut: int) -> None:
    middle = cut % (len(deliveries) + 1)
    before = _step(PeriodState(), deliveries[:middle])
    before_json = before.to_json()
    after = _step(before, deliveries[middle:])
    # As the worker has it after a restart: decoded from the record, then stepped.
    decoded = PeriodState.from_json(before_json)
    after_decoded = _step(decoded, deliveries[middle:])
    full = after.to_json()
    assert after.to_json(unchanged_from=(before, before_json)) == full
    assert after_decoded.to_json(unchanged_from=(decoded, before_json)) == full
    assert PeriodState.from_json(after.to_json(unchanged_from=(before, before_json))) == after


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
