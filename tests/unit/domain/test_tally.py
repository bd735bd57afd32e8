"""Running tallies (``step_many``) give the figures a fresh count gives, whatever the amounts and order."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.domain.rollup import (
    PeriodState,
    Tally,
    canonical_json,
    compute_rollups,
    scope_tallies,
    step_many,
)
from schemas import CatalogValue, CountValue, FlagValue, RatioValue, Report, ReportValue
from schemas.events import MAX_AMOUNT
from tests.unit.conftest import COMPUTED_AT, OBSERVED, make_report, ratio

PERIOD = "2024-H1"
INDICATORS = (
    "emc_connection",
    "online_records_rate",
    "digital_tech_enterprises",
    "essential_public_services",
)
HANOI = timezone(timedelta(hours=7))

AMOUNTS = st.one_of(
    st.integers(min_value=0, max_value=10_000).map(float),
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 0.2, 0.3, float(MAX_AMOUNT), MAX_AMOUNT - 0.5]),
)


def _reporters(indicator_id: str) -> list[str]:
    indicator = default_catalog()[indicator_id]
    period = parse_period(PERIOD, indicator.period_type)
    expected = default_registry().expected_sorted(indicator.groups, period.end)
    return sorted({*expected[:3], *expected[-3:]})


def _values(indicator_id: str) -> st.SearchStrategy[ReportValue]:
    indicator = default_catalog()[indicator_id]
    if indicator.kind == "flag":
        return st.builds(FlagValue, value=st.booleans())
    if indicator.kind == "ratio":
        return st.builds(RatioValue, numerator=AMOUNTS, denominator=AMOUNTS)
    if indicator.kind == "count":
        return st.builds(CountValue, value=AMOUNTS)
    return st.builds(CatalogValue, done=st.lists(st.sampled_from(indicator.items[:5]), max_size=4))


@st.composite
def _batches(draw: st.DrawFn) -> tuple[str, list[list[Report]]]:
    """An indicator and its reports in batches: few instants, each in UTC or Hanoi time (the same
    instant prints differently), so restatements and ties are common."""
    indicator_id = draw(st.sampled_from(INDICATORS))
    reporters = _reporters(indicator_id)
    reports = [
        make_report(
            draw(st.sampled_from(reporters)),
            draw(_values(indicator_id)),
            indicator=indicator_id,
            observed_at=(OBSERVED + timedelta(minutes=draw(st.integers(0, 3)))).astimezone(
                draw(st.sampled_from([UTC, HANOI]))
            ),
            event_id=draw(st.uuids()),
        )
        for _ in range(draw(st.integers(min_value=1, max_value=16)))
    ]
    cuts = sorted(draw(st.lists(st.integers(0, len(reports)), max_size=4)))
    edges = [0, *cuts, len(reports)]
    return indicator_id, [reports[a:b] for a, b in itertools.pairwise(edges) if b > a]


def _view(tally: Tally) -> dict[str, Any]:
    """A tally's fields, with the newest instant as printed (equal instants compare equal)."""
    fields = dict(vars(tally))
    fields["newest"] = tally.newest.isoformat() if tally.newest else None
    return fields


@settings(max_examples=300, deadline=None)
@given(_batches())
def test_kept_tallies_and_published_figures_equal_a_fresh_count(case: tuple[str, list[list[Report]]]) -> None:
    indicator_id, batches = case
    indicator = default_catalog()[indicator_id]
    period = parse_period(PERIOD, indicator.period_type)
    registry = default_registry()
    state, offset = PeriodState(), 0
    for batch in batches:
        offsets = list(range(offset, offset + len(batch)))
        offset += len(batch)
        state, published, _ = step_many(state, batch, indicator, period, registry, COMPUTED_AT, offsets)
        fresh = scope_tallies(indicator, period, state.latest, registry)
        assert state.tallies is not None
        assert state.tallies.latest is state.latest
        assert {s: _view(t) for s, t in state.tallies.by_scope.items()} == {
            s: _view(t) for s, t in fresh.items()
        }
        recomputed = {
            r.scope: r for r in compute_rollups(indicator, period, state.latest, registry, COMPUTED_AT)
        }
        for rollup in published:
            assert rollup == recomputed[rollup.scope]
        # Every scope's last published figure is the current one.
        assert state.published == {scope: r.revision for scope, r in recomputed.items()}


@settings(max_examples=150, deadline=None)
@given(_batches(), st.randoms(use_true_random=False))
def test_figures_do_not_depend_on_the_order_of_reports(
    case: tuple[str, list[list[Report]]], rng: Any
) -> None:
    indicator_id, batches = case
    indicator = default_catalog()[indicator_id]
    period = parse_period(PERIOD, indicator.period_type)
    registry = default_registry()
    reports = [report for batch in batches for report in batch]
    shuffled = list(reports)
    rng.shuffle(shuffled)
    finals = []
    for order in (reports, shuffled):
        state = PeriodState()
        for report in order:
            state, _, _ = step_many(state, [report], indicator, period, registry, COMPUTED_AT)
        finals.append(state.published)
    assert finals[0] == finals[1]


def test_sums_of_amounts_that_are_not_whole_are_the_exact_sum_rounded_once() -> None:
    # Added in turn, 0.1 + 0.2 + 0.3 is 0.6000000000000001 and depends on the order.
    indicator = default_catalog()["online_records_rate"]
    period = parse_period(PERIOD, indicator.period_type)
    reporters = ["province:01", "province:02", "province:04"]
    for order in ([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]):
        state = PeriodState()
        for reporter, amount in zip(reporters, order, strict=True):
            report = make_report(reporter, ratio(amount, 1), indicator=indicator.id)
            state, _, _ = step_many(state, [report], indicator, period, default_registry(), COMPUTED_AT)
        (provinces,) = [
            r
            for r in compute_rollups(indicator, period, state.latest, default_registry(), COMPUTED_AT)
            if r.scope == "provinces"
        ]
        assert provinces.numerator == math.fsum([0.1, 0.2, 0.3]) == 0.6
        assert provinces.denominator == 3.0


NAMES = st.one_of(st.from_regex(r"province:[A-Za-z0-9_-]{1,8}", fullmatch=True), st.text(max_size=6))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(NAMES, max_size=12),
    st.lists(NAMES, max_size=12),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4)),
)
def test_canonical_json_is_json_dumps_byte_for_byte(
    lagging: list[str], missing: list[str], other: Any
) -> None:
    body = {"lagging": lagging, "not_reported": missing, "scope": "national", "x": other, "at": OBSERVED}
    assert canonical_json(body) == json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
