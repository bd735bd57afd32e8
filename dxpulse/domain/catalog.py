"""The indicator catalog: a YAML file (data/catalog.yaml unless the settings name another), validated."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from functools import cache, cached_property
from importlib import resources
from importlib.abc import Traversable
from itertools import pairwise
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dxpulse.domain.datafile import DataError, YamlDocument
from dxpulse.domain.periods import Period, PeriodError, PeriodType, parse_period

IndicatorKind = Literal["flag", "ratio", "count", "catalog"]
Severity = Literal["critical", "warning", "info"]


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Baseline(_Entry):
    """The value an indicator had at a start date, where known."""

    value: float
    date: date


class Target(_Entry):
    """What the indicator must reach, by when; fractions for shares, absolute for counts.

    An indicator has one (``target:``) or several, its milestones (``targets:``)."""

    value: float = Field(gt=0)
    deadline: date
    baseline: Baseline | None = None
    label: str = Field(default="", description='Where the milestone comes from, e.g. "2025 plan".')


class BelowTargetRule(_Entry):
    """below_target: after the deadline, attainment is under 100%."""

    enabled: bool = True
    severity: Severity = Field(default="critical", description="Severity on the national scope.")
    group_severity: Severity = Field(default="warning", description="Severity on one group's scope.")


class OffTrajectoryRule(_Entry):
    """off_trajectory: before the deadline, behind the baseline-to-target line or projected to miss."""

    enabled: bool = True
    severity: Severity = "warning"
    group_severity: Severity = "info"
    tolerance: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="How far behind the line (or the target, if projected) counts, as a share of the target.",
    )
    history: int = Field(
        default=12, ge=2, le=100, description="Recent figures kept per rollup to project the deadline value."
    )
    min_history_days: int = Field(
        default=30, ge=1, description="Span the kept figures must cover before a projection is trusted."
    )


class RegressionRule(_Entry):
    """regression: a figure falls; resolves once it is back where it was."""

    enabled: bool = True
    severity: Severity = "warning"
    group_severity: Severity = "warning"


class MissingReportsRule(_Entry):
    """missing_reports: at the period's reporting deadline, expected reporters have not reported.

    Judged on the national scope only: its list covers every group, so groups would repeat it.
    """

    enabled: bool = True
    severity: Severity = "warning"
    grace_days: int = Field(
        default=30, ge=0, le=366, description="Reports are due this many days after the period ends."
    )
    lookback_periods: int = Field(
        default=4,
        ge=1,
        le=60,
        description=(
            "How many of the latest periods past their reporting deadline are judged even when"
            " nobody reported for them; older ones only if a report ever arrived. Bounds what a"
            " fresh deployment raises at once."
        ),
    )


class AlertRules(_Entry):
    """An indicator's alert rules; every setting has a default, so the catalog names only exceptions."""

    below_target: BelowTargetRule = BelowTargetRule()
    off_trajectory: OffTrajectoryRule = OffTrajectoryRule()
    regression: RegressionRule = RegressionRule()
    missing_reports: MissingReportsRule = MissingReportsRule()


class Indicator(_Entry):
    """One catalog entry: what is reported, per which period, by whom, and how it rolls up."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    name: str
    unit: str
    kind: IndicatorKind
    period_type: PeriodType
    groups: tuple[str, ...] = Field(min_length=1)
    target: Target | None = None
    targets: tuple[Target, ...] = Field(
        default=(),
        description=(
            "Milestones, by deadline (e.g. the 2024 plan, the 2025 plan and 2030), instead of one"
            " ``target``; each period is judged against the one in force (``milestone_in_force``)."
        ),
    )
    items: tuple[str, ...] = ()
    source: str = ""
    first_period: str | None = Field(
        default=None,
        description=(
            "The first period reporters owe a report for; missing_reports expects none before it."
            " None: bounded by missing_reports.lookback_periods alone."
        ),
    )
    alerts: AlertRules = AlertRules()

    @model_validator(mode="after")
    def _items_only_for_catalogs(self) -> Indicator:
        if self.kind == "catalog" and not self.items:
            raise ValueError(f"catalog indicator {self.id} needs its list of items")
        if self.kind != "catalog" and self.items:
            raise ValueError(f"indicator {self.id} is a {self.kind}; only catalogs have items")
        if len(set(self.items)) != len(self.items):
            raise ValueError(f"catalog indicator {self.id} lists an item twice")
        return self

    @model_validator(mode="after")
    def _one_form_of_target(self) -> Indicator:
        if self.target is not None and self.targets:
            raise ValueError(f"indicator {self.id}: give either target or targets, not both")
        deadlines = [milestone.deadline for milestone in self.targets]
        if any(later <= earlier for earlier, later in pairwise(deadlines)):
            raise ValueError(f"indicator {self.id}: list targets by deadline, each later than the one before")
        return self

    @property
    def milestones(self) -> tuple[Target, ...]:
        """Every target of the indicator, by deadline: ``targets``, or ``target`` alone, or none."""
        return (self.target,) if self.target is not None else self.targets

    @property
    def owed_from(self) -> date | None:
        """The first day of ``first_period``: reports are owed for the periods starting on or after
        it (None: no first period)."""
        if self.first_period is None:
            return None
        return parse_period(self.first_period, self.period_type).start

    @model_validator(mode="after")
    def _first_period_fits_period_type(self) -> Indicator:
        if self.first_period is not None:
            try:
                parse_period(self.first_period, self.period_type)
            except PeriodError as error:
                raise ValueError(f"indicator {self.id}: first_period: {error}") from None
        return self


def milestone_in_force(indicator: Indicator, period: Period | str) -> Target | None:
    """The milestone a period's figures are judged against: the earliest whose deadline is on or
    after the period's last day; for a period ending after the last deadline, the last milestone.
    None for an indicator without targets. ``period`` may be a label ("2024-H2")."""
    milestones = indicator.milestones
    if not milestones:
        return None
    end = (parse_period(period) if isinstance(period, str) else period).end
    return next((milestone for milestone in milestones if milestone.deadline >= end), milestones[-1])


def next_milestone(indicator: Indicator, on: date) -> Target | None:
    """The milestone still ahead on day ``on``: the earliest whose deadline is on or after it (a
    deadline falling on ``on`` is still ahead). None once every deadline has passed, or without targets."""
    return next((milestone for milestone in indicator.milestones if milestone.deadline >= on), None)


def trajectory_start(indicator: Indicator, milestone: Target) -> Baseline | None:
    """Where the straight line to ``milestone`` starts: its own baseline; else, for a milestone after
    the first, the milestone before it (its value on its deadline); else none."""
    if milestone.baseline is not None:
        return milestone.baseline
    milestones = indicator.milestones
    index = milestones.index(milestone) if milestone in milestones else 0
    if index == 0:
        return None
    before = milestones[index - 1]
    return Baseline(value=before.value, date=before.deadline)


EARLIEST_PERIOD_START = date(2020, 1, 1)
"""The default ``Catalog.earliest_period_start``: the national digital-transformation programme's start."""


class Catalog(_Entry):
    """All indicators, by id."""

    earliest_period_start: date = Field(
        default=EARLIEST_PERIOD_START,
        description=(
            "The first day a reported period may start: a report for an earlier period is refused"
            " (period-too-old). Without a floor one reporter could create a figure, its state and its"
            " alerts for every period since year 1."
        ),
    )
    indicators: tuple[Indicator, ...]

    @field_validator("indicators")
    @classmethod
    def _unique_ids(cls, indicators: tuple[Indicator, ...]) -> tuple[Indicator, ...]:
        ids = [i.id for i in indicators]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"indicator ids listed twice: {', '.join(duplicated)}")
        return indicators

    @model_validator(mode="after")
    def _first_periods_not_before_the_earliest(self) -> Catalog:
        early = [
            f"{i.id} ({i.first_period})"
            for i in self.indicators
            if (owed_from := i.owed_from) is not None and owed_from < self.earliest_period_start
        ]
        if early:
            raise ValueError(
                f"first_period before earliest_period_start ({self.earliest_period_start}), so never"
                f" reportable: {', '.join(early)}"
            )
        return self

    def get(self, indicator_id: str) -> Indicator | None:
        return self._by_id.get(indicator_id)

    def __getitem__(self, indicator_id: str) -> Indicator:
        return self._by_id[indicator_id]

    @cached_property
    def _by_id(self) -> dict[str, Indicator]:
        # Built once: every report's validation looks its indicator up (1% of ingest, rebuilt per call).
        return {i.id: i for i in self.indicators}


def _catalog_file(path: Traversable | None) -> Traversable:
    return path if path is not None else resources.files("dxpulse.data").joinpath("catalog.yaml")


def load_catalog(path: Traversable | None = None) -> Catalog:
    """Read and validate a catalog file; the packaged one when no path is given.

    A wrong file raises pydantic's ``ValidationError``; ``read_catalog`` says where it is wrong."""
    return Catalog.model_validate(yaml.safe_load(_catalog_file(path).read_text(encoding="utf-8")))


def read_catalog(path: Traversable | None = None, groups: Collection[str] | None = None) -> Catalog:
    """The catalog at ``path`` (the packaged one by default), refused with a ``DataError`` naming the
    file, line and field of every problem; with ``groups`` (the registry's), naming a group it lacks too."""
    document = YamlDocument.read(_catalog_file(path))
    catalog = document.validated(Catalog)
    unknown = [
        document.problem(("indicators", i, "groups", j), f"no group {name!r} in the registry")
        for i, indicator in enumerate(catalog.indicators)
        for j, name in enumerate(indicator.groups)
        if groups is not None and name not in groups
    ]
    if unknown:
        raise DataError(unknown)
    return catalog


@cache
def default_catalog() -> Catalog:
    """The packaged catalog, read once per process."""
    return read_catalog()
