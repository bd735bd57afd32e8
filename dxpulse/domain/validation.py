"""Pure validation of a report against the catalog and the registry in force for its period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from dxpulse.domain.catalog import Catalog, Indicator
from dxpulse.domain.periods import Period, PeriodError, parse_period
from dxpulse.domain.registry import Registry
from schemas import Report, ReportValue
from schemas.events import MAX_AMOUNT, SCHEMA_VERSION

EARLIEST_OBSERVATION = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest observation time accepted: no system clock reads earlier, and a time in year 1 with
a positive UTC offset has no UTC instant that PostgreSQL's driver could write."""
CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future an observation time may be before it is refused (reporters' clocks drift)."""


@dataclass(frozen=True)
class Problem:
    """One reason a report is refused; ``type`` is the slug of an RFC 9457 problem type."""

    type: str
    title: str
    detail: str
    field: str | None = None


@dataclass(frozen=True)
class Accepted:
    """A report that passed validation, with its parsed period."""

    report: Report
    period: Period


def validate_report(
    report: Report, catalog: Catalog, registry: Registry, now: datetime
) -> Accepted | Problem:
    """Check a schema-valid report against the catalog and registry; the first problem found wins."""
    indicator = catalog.get(report.indicator)
    if indicator is None:
        return Problem(
            "unknown-indicator",
            "Unknown indicator",
            f"indicator {report.indicator!r} is not in the catalog; GET /v1/indicators lists them",
            "indicator",
        )
    try:
        period = parse_period(report.period, indicator.period_type)
    except PeriodError as error:
        return Problem("invalid-period", "Period does not fit the indicator", str(error), "period")
    if period.start < catalog.earliest_period_start:
        return Problem(
            "period-too-old",
            "Period is before the catalog's first",
            f"period {period.label} starts on {period.start}, before {catalog.earliest_period_start},"
            " the first day a reported period may start",
            "period",
        )
    if period.start > now.date():
        return Problem(
            "future-period",
            "Period has not started",
            f"period {period.label} starts on {period.start}; report it once it has started",
            "period",
        )
    if report.observed_at > now + CLOCK_SKEW:
        return Problem(
            "future-observation",
            "Observation time is in the future",
            f"observed_at {report.observed_at.isoformat()} is later than now"
            f" ({now.isoformat()}); check the reporting system's clock",
            "observed_at",
        )
    if report.observed_at < EARLIEST_OBSERVATION:
        return Problem(
            "observation-too-old",
            "Observation time is before 1970",
            f"observed_at {report.observed_at.isoformat()} is before 1970-01-01T00:00:00Z, earlier than"
            " any system's clock; check the reporting system's clock and date format",
            "observed_at",
        )
    reporter = registry.get(report.reporter)
    if reporter is None:
        return Problem(
            "unknown-reporter",
            "Unknown reporter",
            f"reporter {report.reporter!r} is not in the registry; ids look like province:79,"
            " ministry:MOH or national:MPS",
            "reporter",
        )
    if reporter.valid_from is not None and period.end < reporter.valid_from:
        return Problem(
            "reporter-not-yet-valid",
            "Reporter did not exist in this period",
            f"{reporter.id} ({reporter.name}) exists from {reporter.valid_from};"
            f" report {period.label} as the unit that existed then",
            "reporter",
        )
    if not reporter.active_on(period.end):
        successor = registry.current_successor(reporter.id, period.end)
        instead = f"; report as {successor}" if successor else ""
        return Problem(
            "retired-reporter",
            "Reporter no longer exists for this period",
            f"{reporter.id} ({reporter.name}) ceased on {reporter.valid_to}"
            f" and is not a reporter for {period.label}{instead}",
            "reporter",
        )
    if report.reporter not in registry.expected(indicator.groups, period.end):
        return Problem(
            "reporter-not-expected",
            "Reporter does not report this indicator",
            f"{indicator.id} is reported by {', '.join(indicator.groups)};"
            f" {report.reporter} is not among them",
            "reporter",
        )
    problem = _value_problem(indicator, report.value)
    if problem is not None:
        return problem
    return Accepted(report=report, period=period)


def _value_problem(indicator: Indicator, value: ReportValue) -> Problem | None:
    """What is wrong with a report's value for ``indicator``, if anything."""
    if value.kind != indicator.kind:
        return Problem(
            "wrong-value-kind",
            "Value of the wrong kind",
            f"{indicator.id} is a {indicator.kind} indicator, but the value is a {value.kind};"
            f' send {{"kind": "{indicator.kind}", ...}}',
            "value.kind",
        )
    if value.kind == "ratio" and value.numerator > value.denominator:
        return Problem(
            "numerator-exceeds-denominator",
            "Numerator greater than denominator",
            f"numerator {value.numerator:g} is greater than denominator {value.denominator:g}",
            "value.numerator",
        )
    if value.kind == "catalog":
        unknown = sorted(set(value.done) - set(indicator.items))
        if unknown:
            return Problem(
                "unknown-catalog-item",
                "Unknown catalog item",
                f"{indicator.id} has no item(s) {', '.join(unknown[:10])}; items are"
                f" {indicator.items[0]} .. {indicator.items[-1]}",
                "value.done",
            )
    return None


class ReportJudge:
    """``validate_report`` over one catalog and registry, remembering what does not depend on the
    report itself: its period parsed for its indicator, and its reporter's standing in the registry.
    A report passing the remembered checks is accepted at the cost of a few lookups; any other is
    judged by ``validate_report``, which says why not (docs/design/aggregator-batches.md)."""

    def __init__(self, catalog: Catalog, registry: Registry) -> None:
        self._catalog = catalog
        self._registry = registry
        self._periods: dict[tuple[str, str], tuple[Indicator, Period, set[str]]] = {}
        """(indicator, period label) of accepted reports → the indicator, the parsed period, and the
        reporters that passed the registry's checks for its groups and period end."""
        self._passed: dict[tuple[tuple[str, ...], date], set[str]] = {}
        """(groups, period end) → the reporters that passed the registry's checks for them."""
        self._observed_from = EARLIEST_OBSERVATION.date()
        """An observation dated after this day, in its own time zone, is after the earliest allowed
        instant whatever its UTC offset (under a day); one dated on it or before is judged in full."""
        self._instant: tuple[datetime, date, datetime, date] | None = None
        """The last ``now`` judged at, its day, the latest observation time it allows, and the first
        day (in the observation's own time zone) whose observations need comparing with that."""

    def __call__(self, report: Report, now: datetime) -> Accepted | Problem:
        known = self._periods.get((report.indicator, report.period))
        if known is not None:
            indicator, period, passed = known
            _, today, latest, comparing_from = self._bounds(now)
            if (
                report.reporter in passed
                and period.start <= today
                and self._observed_from < report.observed_at.date()
                and (report.observed_at.date() < comparing_from or report.observed_at <= latest)
                and _value_problem(indicator, report.value) is None
            ):
                return Accepted(report=report, period=period)
        verdict = validate_report(report, self._catalog, self._registry, now)
        if isinstance(verdict, Accepted):
            indicator = self._catalog[report.indicator]
            passed = self._passed.setdefault((indicator.groups, verdict.period.end), set())
            passed.add(report.reporter)
            self._periods[(report.indicator, report.period)] = (indicator, verdict.period, passed)
        return verdict

    def _bounds(self, now: datetime) -> tuple[datetime, date, datetime, date]:
        # A batch's reports are all judged at one instant: its bounds are worked out once.
        if self._instant is None or self._instant[0] is not now:
            latest = now + CLOCK_SKEW
            # An observation dated before the day before ``latest``'s UTC day is earlier than
            # ``latest`` whatever its UTC offset (under a day): no need to compare the instants,
            # which asks both time zones for their offsets.
            comparing_from = (
                latest.astimezone(UTC).date() - timedelta(days=1) if latest.tzinfo is not None else date.min
            )
            self._instant = (now, now.date(), latest, comparing_from)
        return self._instant


_VALUE_KINDS = ("flag", "ratio", "count", "catalog")


def _field(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted field, without the union tag (value.ratio.numerator)."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] == "value" and parts[1] in _VALUE_KINDS:
        del parts[1]
    return ".".join(parts)


def schema_problem(error: ValidationError) -> Problem:
    """The most precise problem for a report that does not parse or does not match the schema.

    Malformed JSON, an unsupported schema version and negative or too large amounts get their own types
    (a vendor fixes each differently); anything else is ``invalid-report`` listing every field.
    """
    errors = error.errors(include_url=False)
    for e in errors:
        if e["type"] == "json_invalid":
            return Problem("malformed-json", "Malformed JSON", f"the body is not valid JSON: {e['msg']}")
    for e in errors:
        if e["loc"] == ("schema_version",):
            return Problem(
                "unsupported-schema-version",
                "Unsupported schema version",
                f"schema_version {e.get('input')!r} is not supported; this API takes"
                f" schema_version {SCHEMA_VERSION} (schemas/json/report.v1.schema.json)",
                "schema_version",
            )
    for e in errors:
        if e["type"] == "greater_than_equal" and e["loc"][:1] == ("value",):
            field = _field(e["loc"])
            return Problem(
                "negative-value",
                "Negative amount",
                f"{field} is {e.get('input')!r}; counts, numerators and denominators cannot be negative",
                field,
            )
    for e in errors:
        if e["type"] == "less_than_equal" and e["loc"][:1] == ("value",):
            field = _field(e["loc"])
            return Problem(
                "value-too-large",
                "Amount too large",
                f"{field} is {e.get('input')!r}; counts, numerators and denominators are at most"
                f" {MAX_AMOUNT} (10^15), far above any real figure: check the unit",
                field,
            )
    details = "; ".join(f"{_field(e['loc']) or 'body'}: {e['msg']}" for e in errors[:20])
    first = _field(errors[0]["loc"]) if errors else None
    return Problem("invalid-report", "Report does not match the schema", details, first or None)


def parse_report(data: bytes | str | Any, *, is_json: bool = True) -> Report | Problem:
    """Parse a report from JSON text (or, with ``is_json=False``, from decoded JSON data)."""
    try:
        if is_json:
            return Report.model_validate_json(data)
        return Report.model_validate(data)
    except ValidationError as error:
        return schema_problem(error)
