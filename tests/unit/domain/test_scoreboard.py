"""The scoreboard's pure parts: Open SDG's progress words, unit values, rankings, colours and tiles."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dxpulse.domain.catalog import Baseline, Catalog, Indicator, Target, milestone_in_force
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.domain.scoreboard import (
    NO_REPORT_COLOUR,
    PALETTE,
    PROVINCES_2024,
    PROVINCES_2025,
    colour,
    legend,
    progress,
    ranking,
    score,
    tile_cells,
    unit_status,
    unit_text,
    unit_value,
)
from tests.unit.conftest import count, done, flag, ratio


def _share(baseline: Baseline | None = None) -> Indicator:
    target = Target(value=1.0, deadline=date(2024, 12, 31), baseline=baseline)
    return Indicator(
        id="share",
        name="A share",
        unit="share",
        kind="ratio",
        period_type="half",
        groups=("provinces",),
        target=target,
    )


BASELINE = Baseline(value=0.5, date=date(2023, 12, 31))
"""From 50% on 2023-12-31 to 100% on 2024-12-31: 366 days, so the line is at 75% on 2024-07-01."""
MID_2024 = date(2024, 7, 1)
H1 = parse_period("2024-H1")


@pytest.mark.parametrize(
    ("value", "word"),
    [
        (1.0, "Target achieved"),
        (0.76, "On track"),  # 0.26 of the 0.25 gained by now on the line: R = 1.04
        (0.74, "On track"),  # R = 0.96, above 95%
        (0.70, "Progress made but acceleration needed"),  # R = 0.8
        (0.60, "Limited progress"),  # R = 0.4
        (0.50, "Limited progress"),  # R = 0: no gain, no loss
        (0.40, "Deterioration"),  # below where it started
    ],
)
def test_progress_words_follow_open_sdg_thresholds(value: float, word: str) -> None:
    assert progress(_share(BASELINE), H1, value, MID_2024).word == word


def test_progress_measures_the_pace_from_the_earliest_figure_without_a_baseline() -> None:
    earlier = [(date(2024, 1, 1), 0.5), (date(2024, 3, 1), 0.6)]
    assert progress(_share(), H1, 0.76, MID_2024, earlier).word == "On track"
    assert progress(_share(), H1, 0.76, MID_2024).word == "Not assessed"
    # Figures on or after the day measured are not a start.
    assert progress(_share(), H1, 0.76, MID_2024, [(MID_2024, 0.1)]).word == "Not assessed"


def test_a_figure_short_of_its_target_past_the_deadline_is_never_on_track() -> None:
    late = date(2025, 1, 5)
    ratio_of_pace = progress(_share(BASELINE), H1, 0.99, late)
    assert ratio_of_pace.ratio is not None
    assert ratio_of_pace.ratio >= 0.95
    assert ratio_of_pace.word == "Progress made but acceleration needed"


def test_no_target_or_no_value_is_not_assessed() -> None:
    no_target = _share().model_copy(update={"target": None})
    assert progress(no_target, H1, 0.5, MID_2024).word == "Not assessed"
    assert progress(_share(BASELINE), H1, None, MID_2024).word == "Not assessed"
    assert progress(_share(BASELINE), H1, None, MID_2024).css == "none"


@given(st.floats(min_value=0, max_value=1), st.integers(min_value=1, max_value=365))
def test_progress_never_gets_worse_as_the_value_rises(value: float, days: int) -> None:
    on = BASELINE.date + timedelta(days=days)
    order = [
        "Deterioration",
        "Limited progress",
        "Progress made but acceleration needed",
        "On track",
        "Target achieved",
    ]
    lower = progress(_share(BASELINE), H1, value * 0.9, on).word
    higher = progress(_share(BASELINE), H1, value, on).word
    assert order.index(lower) <= order.index(higher)


def test_unit_values_and_texts_per_kind(catalog: Catalog) -> None:
    emc, records = catalog["emc_connection"], catalog["online_records_rate"]
    enterprises, services = catalog["digital_tech_enterprises"], catalog["essential_public_services"]
    assert (unit_value(emc, flag(True)), unit_text(emc, flag(False))) == (1.0, "not connected")
    assert unit_value(records, ratio(61, 100)) == 0.61
    assert unit_text(records, ratio(1525, 2500)) == "61.0% (1,525/2,500)"
    assert unit_value(records, ratio(0, 0)) is None
    assert (unit_value(enterprises, count(1234)), unit_text(enterprises, count(1234))) == (1234.0, "1,234")
    assert unit_text(services, done("eps-01", "eps-02", "not-listed")) == "2/53"


def test_ranking_puts_the_best_first_ties_together_and_the_silent_last(catalog: Catalog) -> None:
    emc = catalog["emc_connection"]
    names = {"ministry:A": "A", "ministry:B": "B", "ministry:C": "C", "ministry:D": "D"}
    values = {"ministry:C": flag(True), "ministry:A": flag(True), "ministry:D": flag(False)}
    rows = ranking(emc, names, values, emc.target)
    assert [(r.rank, r.reporter, r.status) for r in rows] == [
        (1, "ministry:A", "met"),
        (1, "ministry:C", "met"),
        (3, "ministry:D", "behind"),
        (None, "ministry:B", "not reported"),
    ]


def test_a_count_has_no_per_unit_target(catalog: Catalog) -> None:
    enterprises, records = catalog["digital_tech_enterprises"], catalog["online_records_rate"]
    assert unit_status(enterprises, 10.0, milestone_in_force(enterprises, "2024-H1")) == "reported"
    half = Target(value=0.5, deadline=date(2025, 12, 31))
    assert unit_status(records, 0.4, half) == "behind"
    assert unit_status(records, 0.5, half) == "met"
    assert unit_status(records, 0.4, None) == "reported"
    assert unit_status(records, None, half) == "not reported"


@given(st.floats(min_value=0, max_value=1))
def test_colours_rise_with_the_score_and_grey_means_no_report(value: float) -> None:
    assert PALETTE.index(colour(value)) <= PALETTE.index(colour(min(1.0, value + 0.2)))
    assert colour(None) == NO_REPORT_COLOUR
    assert colour(0.0) == PALETTE[0]
    assert colour(1.0) == PALETTE[-1]


def test_counts_are_scored_against_the_largest_unit(catalog: Catalog) -> None:
    enterprises = catalog["digital_tech_enterprises"]
    assert score(enterprises, 500.0, 1000.0) == 0.5
    assert score(enterprises, None, 1000.0) is None
    assert score(catalog["online_records_rate"], 1.2, None) == 1.0
    keys = legend(enterprises, 1000.0)
    assert keys[0] == (PALETTE[0], "0 \u2013 200")
    assert keys[-1] == (NO_REPORT_COLOUR, "not reported")


@pytest.mark.parametrize(
    ("day", "layout"), [(date(2024, 6, 30), PROVINCES_2024), (date(2025, 7, 1), PROVINCES_2025)]
)
def test_every_province_of_each_registry_version_has_its_own_cell(
    day: date, layout: dict[str, tuple[int, int]]
) -> None:
    registry = default_registry()
    codes = [registry.reporters[p].code for p in registry.members("provinces", day)]
    cells = tile_cells(codes)
    assert cells == layout
    assert sorted(cells) == sorted(codes)
    assert len(set(cells.values())) == len(cells)


def test_the_maps_run_north_to_south() -> None:
    # Hà Giang above Hà Nội above Huế above Hồ Chí Minh above Cà Mau, on both maps.
    rows_2024 = [PROVINCES_2024[c][1] for c in ("02", "01", "46", "79", "96")]
    rows_2025 = [PROVINCES_2025[c][1] for c in ("08", "01", "46", "79", "96")]
    assert rows_2024 == sorted(rows_2024)
    assert rows_2025 == sorted(rows_2025)


def test_a_registry_with_other_provinces_gets_a_plain_grid() -> None:
    cells = tile_cells(["01", "02", "99"])
    assert cells == {"01": (0, 0), "02": (1, 0), "99": (2, 0)}


def test_progress_is_judged_against_the_milestone_in_force_for_the_period() -> None:
    # 40% by the end of 2024, then 80% by the end of 2025: the line to the second starts at the first.
    staged = _share().model_copy(
        update={
            "target": None,
            "targets": (
                Target(value=0.4, deadline=date(2024, 12, 31)),
                Target(value=0.8, deadline=date(2025, 12, 31)),
            ),
        }
    )
    assert progress(staged, H1, 0.45, MID_2024).word == "Target achieved"
    # 2025-H1 against 80%: from 40% on 2024-12-31, the line is at about 60% on 2025-07-01.
    h1_2025 = parse_period("2025-H1")
    assert progress(staged, h1_2025, 0.60, date(2025, 7, 1)).word == "On track"
    assert progress(staged, h1_2025, 0.45, date(2025, 7, 1)).word == "Limited progress"


def test_a_unit_shows_the_name_it_had_on_the_day() -> None:
    registry = default_registry()
    yen_bai = registry.reporters["province:15"]
    assert yen_bai.name_on(date(2024, 6, 30)) == "Yen Bai"
    assert yen_bai.name_on(date(2025, 7, 1)) == "Lao Cai"
    assert yen_bai.name == "Lao Cai"
    assert registry.reporters["province:10"].name_on(date(2024, 6, 30)) == "Lao Cai"
