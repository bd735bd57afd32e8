"""missing_reports for periods nobody reported for: the calendar of due periods and its empty figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.partitioner import DefaultPartitioner

from dxpulse.domain.catalog import AlertRules, Catalog, Indicator, MissingReportsRule
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import Registry
from dxpulse.domain.rollup import NATIONAL_SCOPE, Snapshot, compute_rollups
from dxpulse.domain.rules import AlertState, due_keys, due_periods, judge_key, unreported_figure
from dxpulse.kafka.topics import partition_of
from schemas import AlertEvent, FlagValue, Rollup

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HOLD = timedelta(minutes=2)


def labels(catalog: Catalog, indicator_id: str, now: datetime) -> list[str]:
    return [p.label for p in due_periods(catalog[indicator_id], now)]


def test_due_periods_are_the_latest_past_their_deadline_within_the_lookback(catalog: Catalog) -> None:
    # Half-years from 2024-H1, 30 days of grace, 4 periods back: 2026-H1 was due 2026-07-30.
    assert labels(catalog, "emc_connection", NOW) == ["2024-H2", "2025-H1", "2025-H2", "2026-H1"]
    # Years from 2024 with 45 days of grace: 2025 was due 2026-02-14; 2026 is not over.
    assert labels(catalog, "vneid_accounts", NOW) == ["2024", "2025"]


def test_a_period_is_due_the_day_after_its_deadline(catalog: Catalog) -> None:
    deadline = datetime(2024, 7, 30, 23, 59, tzinfo=UTC)  # 2024-H1 ends 2024-06-30, plus 30 days
    assert labels(catalog, "emc_connection", deadline) == []
    assert labels(catalog, "emc_connection", deadline + timedelta(minutes=1)) == ["2024-H1"]
    assert labels(catalog, "vneid_accounts", datetime(2025, 2, 14, 12, tzinfo=UTC)) == []
    assert labels(catalog, "vneid_accounts", datetime(2025, 2, 15, tzinfo=UTC)) == ["2024"]


def with_rule(indicator: Indicator, rule: MissingReportsRule) -> Indicator:
    return indicator.model_copy(update={"alerts": AlertRules(missing_reports=rule)})


def test_no_period_before_first_period_and_lookback_is_configured(catalog: Catalog) -> None:
    emc = catalog["emc_connection"]
    assert [p.label for p in due_periods(emc, datetime(2025, 7, 15, tzinfo=UTC))] == ["2024-H1", "2024-H2"]
    unbounded = emc.model_copy(update={"first_period": None})
    assert [p.label for p in due_periods(unbounded, datetime(2025, 7, 15, tzinfo=UTC))] == [
        "2023-H1",
        "2023-H2",
        "2024-H1",
        "2024-H2",
    ]
    two = MissingReportsRule(lookback_periods=2)
    assert [p.label for p in due_periods(with_rule(emc, two), NOW)] == ["2025-H2", "2026-H1"]
    assert due_periods(with_rule(emc, MissingReportsRule(enabled=False)), NOW) == []


def test_every_packaged_indicator_owed_names_its_first_period(catalog: Catalog) -> None:
    # One nobody has to report yet has missing_reports off: without a first_period the rule would
    # raise its latest lookback_periods periods at once.
    owed = [i for i in catalog.indicators if i.alerts.missing_reports.enabled]
    assert [i.id for i in owed if i.first_period is None] == []
    not_owed = [i.id for i in catalog.indicators if not i.alerts.missing_reports.enabled]
    assert [i for i in not_owed if catalog[i].first_period is not None] == []


def test_due_keys_name_the_national_scope_of_every_due_period(catalog: Catalog) -> None:
    keys = due_keys(catalog, NOW)
    assert "emc_connection|2026-H1|national" in keys
    assert "vneid_accounts|2025|national" in keys
    # 8 half-yearly indicators with 4 periods each, 3 yearly ones with 2: bounded, whatever the date
    # (the others nobody has to report yet).
    assert len(keys) == 8 * 4 + 3 * 2
    assert len(due_keys(catalog, NOW + timedelta(days=3650))) == 8 * 4 + 3 * 4


@pytest.mark.parametrize(
    ("period", "provinces", "ministries"),
    [
        ("2024-H2", 63, 21),  # before the reorganisation
        ("2025-H1", 63, 16),  # ministries merged on 2025-03-01, provinces not yet
        ("2025-H2", 34, 16),  # both merged (16: every ministry but the Government Office)
    ],
)
def test_unreported_figure_expects_the_registry_in_force_for_the_period(
    catalog: Catalog, registry: Registry, period: str, provinces: int, ministries: int
) -> None:
    figure = unreported_figure(catalog, registry, f"emc_connection|{period}|national", NOW)
    assert figure is not None
    assert (figure.reporters_reported, figure.reporters_expected) == (0, provinces + ministries)
    assert sum(r.startswith("province:") for r in figure.not_reported) == provinces
    assert sum(r.startswith("ministry:") for r in figure.not_reported) == ministries
    indicator = catalog["emc_connection"]
    assert set(figure.not_reported) == registry.expected(indicator.groups, parse_period(period).end)


@pytest.mark.parametrize(
    "key",
    [
        "emc_connection|2026-H1|provinces",  # missing_reports judges the national scope only
        "emc_connection|2026-H2|national",  # not due yet
        "emc_connection|2024-H1|national",  # due, but older than the lookback
        "emc_connection|2026|national",  # not a period of this indicator
        "no_such_indicator|2026-H1|national",
        "garbage",
    ],
)
def test_unreported_figure_only_for_due_national_keys(catalog: Catalog, registry: Registry, key: str) -> None:
    assert unreported_figure(catalog, registry, key, NOW) is None


def run(
    catalog: Catalog, registry: Registry, key: str, steps: list[tuple[datetime, Rollup | None]]
) -> tuple[AlertState, list[AlertEvent]]:
    """Feed one key's inputs (None: a timer tick) as the alerts worker does, through the table's JSON."""
    state, events = AlertState(), []
    for now, rollup in steps:
        state, new = judge_key(state, key, rollup, now, catalog, registry, HOLD, timedelta(0))
        state = AlertState.from_json(json.loads(json.dumps(state.to_json())))
        events += new
    return state, events


def full_emc(registry: Registry, catalog: Catalog, period_label: str, not_connected: set[str]) -> Rollup:
    indicator, period = catalog["emc_connection"], parse_period(period_label)
    observed = NOW + timedelta(hours=1)
    latest = {
        r: Snapshot(observed, f"e-{r}", FlagValue(value=r not in not_connected))
        for r in registry.expected(indicator.groups, period.end)
    }
    return next(
        r for r in compute_rollups(indicator, period, latest, registry, observed) if r.scope == NATIONAL_SCOPE
    )


def test_nobody_reporting_fires_missing_reports_naming_everyone_then_resolves_on_reports(
    catalog: Catalog, registry: Registry
) -> None:
    key = "emc_connection|2026-H1|national"
    late = full_emc(registry, catalog, "2026-H1", {"ministry:GI"})
    _, events = run(
        catalog,
        registry,
        key,
        [
            (NOW, None),
            (NOW + HOLD, None),
            (NOW + 2 * HOLD, None),
            (NOW + timedelta(hours=1), late),
            (NOW + timedelta(hours=1) + HOLD, None),
        ],
    )
    assert [(e.rule, e.status) for e in events] == [
        ("missing_reports", "firing"),
        ("missing_reports", "resolved"),
        ("below_target", "firing"),
    ]
    fired = events[0]
    assert fired.summary.startswith(
        "16 ministries and 34 localities have not reported Procedure systems connected to EMC for 2026-H1"
        " (due 2026-07-30; 0/50 reported): "
    )
    assert fired.summary.endswith(" and 40 more")
    assert len(fired.reporters) == 50
    assert (fired.starts_at, fired.changed_at, fired.value) == (NOW, NOW + HOLD, None)
    # EMC's deadline is long past, yet "0/50 below target" would only say again that nobody reported:
    # the figure is judged once reports are in, and 49/50 is below target.
    assert events[2].summary.startswith("Procedure systems connected to EMC 98.0% (49/50) below target")


def test_a_rollup_that_arrives_before_the_tick_is_judged_as_usual(
    catalog: Catalog, registry: Registry
) -> None:
    key = "emc_connection|2026-H1|national"
    full = full_emc(registry, catalog, "2026-H1", set())
    state, events = run(catalog, registry, key, [(NOW, full), (NOW + HOLD, None), (NOW + 2 * HOLD, None)])
    assert events == []
    assert state.last == full


def test_ticks_for_keys_that_are_not_due_change_nothing(catalog: Catalog, registry: Registry) -> None:
    for key in ("emc_connection|2026-H2|national", "emc_connection|2026-H1|provinces", "x|y|z"):
        assert run(catalog, registry, key, [(NOW, None), (NOW + HOLD, None)]) == (AlertState(), [])


@pytest.mark.parametrize("key", [b"emc_connection|2026-H1|national", b"", b"x" * 100])
@pytest.mark.parametrize("partitions", [1, 6, 7])
def test_partition_of_matches_the_producers_default_partitioner(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, all_partitions, all_partitions)
