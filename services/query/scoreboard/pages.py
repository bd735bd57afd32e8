"""The scoreboard's three pages (national, one indicator, one unit), built from the history tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime

from dxpulse.domain.catalog import Catalog, Indicator, milestone_in_force, next_milestone
from dxpulse.domain.periods import Period, PeriodError, parse_period, period_of
from dxpulse.domain.registry import Registry, Reporter
from dxpulse.domain.remap import on_map_of
from dxpulse.domain.rollup import NATIONAL_SCOPE, Snapshot
from dxpulse.domain.scoreboard import (
    NO_VALUE,
    UnitStatus,
    amount,
    colour,
    legend,
    percent,
    progress,
    ranking,
    score,
    tile_cells,
    unit_status,
    unit_text,
    unit_value,
)
from schemas import AlertEvent, Rollup
from services.query.core import ReporterValue
from services.query.scoreboard import html
from services.query.scoreboard.html import esc, href
from services.query.scoreboard.reads import ScoreboardReads

PERIOD_ORDER = {"year": 0, "half": 1, "quarter": 2, "month": 3}


class UnknownName(Exception):
    """A page names an indicator or reporter that does not exist, or a period that is not one."""


def _period_key(label: str) -> tuple[date, int]:
    parsed = parse_period(label)
    return parsed.end, PERIOD_ORDER[parsed.type]


def figure_text(rollup: Rollup | None) -> str:
    """ "82/84" for shares, "" for counts and for no figure."""
    if rollup is None or rollup.kind == "count" or rollup.denominator is None:
        return ""
    return f"{rollup.numerator:,.0f}/{rollup.denominator:,.0f}"


def target_text(indicator: Indicator, period: Period | str) -> str:
    """The milestone a period is judged against: "100.0% by 2024-12-31", with its source if named."""
    target = milestone_in_force(indicator, period)
    if target is None:
        return "no target"
    source = f" ({target.label})" if target.label else ""
    return f"{amount(indicator, target.value)} by {target.deadline.isoformat()}{source}"


def next_milestone_text(indicator: Indicator, period: Period | str, today: date) -> str:
    """The milestone still ahead today, when it is not the one the period is judged against:
    "next: 50.0% by 2025-12-31"; "" otherwise."""
    ahead = next_milestone(indicator, today)
    if ahead is None or ahead == milestone_in_force(indicator, period):
        return ""
    source = f" ({ahead.label})" if ahead.label else ""
    return f"next: {amount(indicator, ahead.value)} by {ahead.deadline.isoformat()}{source}"


def milestones_text(indicator: Indicator) -> str:
    """Every milestone of the indicator, by deadline."""
    texts = [
        f"{amount(indicator, m.value)} by {m.deadline.isoformat()}{f' ({m.label})' if m.label else ''}"
        for m in indicator.milestones
    ]
    return "; ".join(texts) if texts else "no target"


def _snapshots(values: Mapping[str, ReporterValue]) -> dict[str, Snapshot]:
    return {reporter: value.snapshot() for reporter, value in values.items()}


class Scoreboard:
    """Builds each page's HTML from the reads; ``today`` says which map is today's, ``sign_out``
    whether the pages offer to sign out (the scoreboard needs a read token)."""

    def __init__(
        self,
        catalog: Catalog,
        registry: Registry,
        reads: ScoreboardReads,
        refresh_s: float,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        *,
        sign_out: bool = False,
    ) -> None:
        self.catalog = catalog
        self.registry = registry
        self.reads = reads
        self.refresh_s = refresh_s
        self.today = today
        self.sign_out = sign_out

    # --- shared pieces ------------------------------------------------------------------------

    def _indicator(self, indicator_id: str) -> Indicator:
        indicator = self.catalog.get(indicator_id)
        if indicator is None:
            raise UnknownName(f"no indicator {indicator_id!r}")
        return indicator

    def _selected(self, requested: str | None, labels: Iterable[str]) -> tuple[Period, list[str]]:
        """The period asked for (or the newest half with figures) and the periods the selector offers."""
        offered = sorted(set(labels), key=_period_key, reverse=True)
        if requested is not None:
            try:
                chosen = parse_period(requested)
            except PeriodError as error:
                raise UnknownName(str(error)) from None
        else:
            halves = [p for p in offered if parse_period(p).type == "half"]
            chosen = parse_period((halves or offered)[0]) if offered else period_of(self.today(), "half")
        if chosen.label not in offered:
            offered = sorted({*offered, chosen.label}, key=_period_key, reverse=True)
        return chosen, offered

    @staticmethod
    def _label_for(indicator: Indicator, selected: Period) -> str:
        """The indicator's own period that holds the selected period's last day (2024 for 2024-H1)."""
        return period_of(selected.end, indicator.period_type).label

    async def _page(self, title: str, content: str, crumbs: str = "") -> str:
        marker = await self.reads.change_marker()
        return html.page(
            title, content, marker=marker, refresh_s=self.refresh_s, crumbs=crumbs, sign_out=self.sign_out
        )

    def _progress_cell(self, indicator: Indicator, rollup: Rollup | None, series: Sequence[Rollup]) -> str:
        if rollup is None:
            return html.badge("No figures", "none")
        as_of = (
            rollup.latest_observed_at.date() if rollup.latest_observed_at else parse_period(rollup.period).end
        )
        earlier = [
            (r.latest_observed_at.date() if r.latest_observed_at else parse_period(r.period).end, r.value)
            for r in series
            if r.value is not None and _period_key(r.period) < _period_key(rollup.period)
        ]
        status = progress(indicator, parse_period(rollup.period), rollup.value, as_of, earlier)
        return html.badge(status.word, status.css)

    # --- the national page --------------------------------------------------------------------

    async def national(self, requested: str | None) -> str:
        national = await self.reads.national_figures()
        selected, offered = self._selected(requested, (r.period for r in national))
        labels = {i.id: self._label_for(i, selected) for i in self.catalog.indicators}
        figures = await self.reads.figures_of_periods(sorted(set(labels.values())))
        by_key = {(r.indicator, r.period, r.scope): r for r in figures}
        rows = []
        silent = []
        for indicator in self.catalog.indicators:
            label = labels[indicator.id]
            rollup = by_key.get((indicator.id, label, NATIONAL_SCOPE))
            if rollup is None:
                silent.append(self._silent_item(indicator, label))
                continue
            series = sorted(
                (r for r in national if r.indicator == indicator.id), key=lambda r: _period_key(r.period)
            )
            rows.append(self._national_row(indicator, label, rollup, series, by_key))
        content = (
            f'<section class="intro"><h1>National scoreboard</h1>'
            f"{html.period_form('/', offered, selected.label, {})}"
            f'<p class="muted">Every indicator of the catalog for {esc(selected.label)}; yearly indicators'
            " show the year that holds it. Progress words follow Open SDG's methodology.</p></section>"
            + html.table(
                ["Indicator", "Value", "Target", "Attainment", "Progress", "Reported", "History"],
                rows,
                css="national",
            )
            + (
                f'<details class="silent" id="silent"><summary>{len(silent)} indicators have no figures'
                f" for {esc(selected.label)}</summary><ul>{''.join(silent)}</ul></details>"
                if silent
                else ""
            )
        )
        return await self._page(f"National scoreboard {selected.label}", content)

    @staticmethod
    def _silent_item(indicator: Indicator, label: str) -> str:
        link = href(f"/indicators/{indicator.id}", period=label)
        return (
            f'<li data-indicator="{esc(indicator.id)}"><a href="{link}">{esc(indicator.name)}</a>'
            f' <span class="muted">{esc(label)} · target {esc(target_text(indicator, label))}</span></li>'
        )

    def _national_row(
        self,
        indicator: Indicator,
        label: str,
        rollup: Rollup | None,
        series: Sequence[Rollup],
        by_key: Mapping[tuple[str, str, str], Rollup],
    ) -> str:
        groups = []
        if len(indicator.groups) > 1:
            for group in indicator.groups:
                part = by_key.get((indicator.id, label, group))
                if part is not None:
                    groups.append(
                        f'<span class="group">{esc(group.replace("_", " "))}'
                        f" {esc(figure_text(part) or amount(indicator, part.value))}"
                        f"{'' if part.kind == 'count' else ' (' + esc(percent(part.value)) + ')'}</span>"
                    )
        values = [r.value for r in series if r.value is not None]
        link = href(f"/indicators/{indicator.id}", period=label)
        completeness = (
            f"{rollup.reporters_reported}/{rollup.reporters_expected} ({percent(rollup.completeness)})"
            if rollup
            else NO_VALUE
        )
        cells = [
            f'<a href="{link}" class="name">{esc(indicator.name)}</a>'
            f'<div class="sub"><span class="period-label">{esc(label)}</span> {" ".join(groups)}</div>',
            f'<span class="value">{esc(amount(indicator, rollup.value) if rollup else NO_VALUE)}</span>'
            f'<div class="fraction">{esc(figure_text(rollup))}</div>',
            f'<span class="target">{esc(target_text(indicator, label))}</span><div class="sub">'
            f"{esc(next_milestone_text(indicator, label, self.today()))}</div>",
            f'<span class="attainment">{esc(percent(rollup.attainment) if rollup else NO_VALUE)}</span>',
            self._progress_cell(indicator, rollup, series),
            f'<span class="completeness">{esc(completeness)}</span>',
            html.sparkline(values, label=f"{indicator.name} per period"),
        ]
        return html.row(cells, attrs=f' data-indicator="{esc(indicator.id)}"')

    # --- one indicator ------------------------------------------------------------------------

    async def indicator(self, indicator_id: str, requested: str | None, today_map: bool) -> str:
        indicator = self._indicator(indicator_id)
        national = [r for r in await self.reads.national_figures() if r.indicator == indicator.id]
        selected, offered = self._selected(
            requested,
            (r.period for r in national) if national else [self._label_for(indicator, self._default_half())],
        )
        # A period of another type (2024-H1 for a yearly indicator) shows the one that holds it.
        period = period_of(selected.end, indicator.period_type)
        offered = sorted(
            {period.label, *(p for p in offered if parse_period(p).type == indicator.period_type)},
            key=_period_key,
            reverse=True,
        )
        figures = {
            r.scope: r
            for r in await self.reads.figures_of_periods([period.label])
            if r.indicator == indicator.id
        }
        values = await self.reads.unit_values(indicator.id, period.label)
        alerts = await self.reads.firing_alerts(indicator.id)
        series = sorted(national, key=lambda r: _period_key(r.period))
        rollup = figures.get(NATIONAL_SCOPE)
        parts = [
            f'<section class="intro"><h1>{esc(indicator.name)}</h1>',
            html.period_form(
                f"/indicators/{indicator.id}", offered, period.label, {"map": "today"} if today_map else {}
            ),
            f'<p class="muted">{esc(indicator.unit)}; reported per {esc(indicator.period_type)} by'
            f" {esc(', '.join(indicator.groups))}. Targets: {esc(milestones_text(indicator))}."
            f" {esc(next_milestone_text(indicator, period, self.today()))}</p></section>",
            self._headline(indicator, rollup, series, figures),
            '<div class="columns"><section class="map">',
            self._map_section(indicator, period, values, today_map),
            '</section><section class="side"><h2>History</h2>',
            self._history(indicator, period, series),
            "<h2>Alerts firing</h2>",
            self._alerts(alerts),
            self._today_ranking(indicator, period, values) if today_map else "",
            self._rankings(indicator, period, values),
            "</section></div>",
        ]
        crumbs = f'<a href="{href("/", period=period.label)}">National</a> &rsaquo; {esc(indicator.name)}'
        return await self._page(f"{indicator.name} {period.label}", "".join(parts), crumbs)

    def _default_half(self) -> Period:
        return period_of(self.today(), "half")

    def _headline(
        self,
        indicator: Indicator,
        rollup: Rollup | None,
        series: Sequence[Rollup],
        figures: Mapping[str, Rollup],
    ) -> str:
        if rollup is None:
            return '<p class="empty" id="headline">No figures for this period yet.</p>'
        groups = "".join(
            f"<li>{esc(scope.replace('_', ' '))}: <strong>{esc(amount(indicator, r.value))}</strong>"
            f" {esc(figure_text(r))} · reported {r.reporters_reported}/{r.reporters_expected}</li>"
            for scope, r in sorted(figures.items())
            if scope != NATIONAL_SCOPE
        )
        facts = [
            f'<span class="fraction">{esc(figure_text(rollup))}</span>' if figure_text(rollup) else "",
            f"attainment <strong>{esc(percent(rollup.attainment))}</strong>",
            f"reported {rollup.reporters_reported}/{rollup.reporters_expected}",
            self._progress_cell(indicator, rollup, series),
        ]
        return (
            '<section class="headline" id="headline">'
            f'<div class="big value">{esc(amount(indicator, rollup.value))}</div>'
            f"<div>{' · '.join(f for f in facts if f)}</div>"
            f'<ul class="groups">{groups}</ul></section>'
        )

    def _map_section(
        self, indicator: Indicator, period: Period, values: Mapping[str, ReporterValue], today_map: bool
    ) -> str:
        provinces = self.registry.expected([g for g in indicator.groups if g == "provinces"], period.end)
        if not provinces:
            return '<h2>Map</h2><p class="muted">This indicator is not reported by provinces.</p>'
        map_day = self.today()
        later_map = self.registry.expected(["provinces"], map_day) != provinces
        link = href(f"/indicators/{indicator.id}", period=period.label, map=None if today_map else "today")
        words = "Show the map of the period" if today_map else f"Show {esc(period.label)} on today's map"
        toggle = f'<p><a class="map-toggle" href="{link}">{words}</a></p>' if later_map else ""
        if today_map and later_map:
            tiles, keys, title = self._today_tiles(indicator, period, values, map_day)
        else:
            tiles, keys, title = self._period_tiles(indicator, provinces, values, period.end)
        return f"<h2>{esc(title)}</h2>{toggle}{html.tile_map(tiles, label=title)}{html.legend(keys)}"

    def _period_tiles(
        self, indicator: Indicator, provinces: frozenset[str], values: Mapping[str, ReporterValue], day: date
    ) -> tuple[list[html.Tile], list[tuple[str, str]], str]:
        numbers = {p: unit_value(indicator, values[p].value) for p in provinces if p in values}
        largest = max((v for v in numbers.values() if v is not None), default=None)
        cells = tile_cells([self._code(p) for p in provinces])
        tiles = []
        for reporter in sorted(provinces):
            number = numbers.get(reporter)
            text = self._tile_text(indicator, number)
            detail = unit_text(indicator, values[reporter].value) if reporter in values else "not reported"
            tiles.append(
                html.Tile(
                    reporter,
                    self._code(reporter),
                    self._name(reporter, day),
                    cells[self._code(reporter)],
                    colour(score(indicator, number, largest)),
                    text,
                    detail,
                    number,
                )
            )
        return tiles, legend(indicator, largest), f"The {len(provinces)} provinces"

    def _today_tiles(
        self, indicator: Indicator, period: Period, values: Mapping[str, ReporterValue], map_day: date
    ) -> tuple[list[html.Tile], list[tuple[str, str]], str]:
        """``period``'s figures summed into the provinces in force on ``map_day`` (dxpulse.domain.remap)."""
        now = datetime.now(UTC)
        remapped = [
            f
            for f in on_map_of(indicator, period, _snapshots(values), self.registry, map_day, now)
            if f.unit.startswith("province:")
        ]
        as_share = indicator.kind == "flag"
        numbers = {f.unit: f.rollup.value if f.rollup.reporters_reported else None for f in remapped}
        largest = max((v for v in numbers.values() if v is not None), default=None)
        cells = tile_cells([self._code(f.unit) for f in remapped])
        tiles = []
        for figure in remapped:
            number = numbers[figure.unit]
            olds = ", ".join(self._name(p, period.end) for p in figure.predecessors)
            shown = (
                f"{number * 100:.0f}%"
                if as_share and number is not None
                else self._tile_text(indicator, number)
            )
            tiles.append(
                html.Tile(
                    figure.unit,
                    self._code(figure.unit),
                    figure.name,
                    cells[self._code(figure.unit)],
                    colour(score(indicator, number, largest)),
                    shown,
                    f"{amount(indicator, number)} {figure_text(figure.rollup)} from {olds}",
                    number,
                )
            )
        keys = legend(indicator.model_copy(update={"kind": "ratio"}) if as_share else indicator, largest)
        return (
            tiles,
            keys,
            f"{period.label} on today's map: the {len(remapped)} provinces of {map_day.isoformat()}",
        )

    def _today_ranking(
        self, indicator: Indicator, period: Period, values: Mapping[str, ReporterValue]
    ) -> str:
        """Today's provinces by their figure for ``period``, highest first: the old units taken together."""
        map_day = self.today()
        if "provinces" not in indicator.groups or self.registry.expected(
            ["provinces"], map_day
        ) == self.registry.expected(["provinces"], period.end):
            return ""
        remapped = [
            f
            for f in on_map_of(
                indicator, period, _snapshots(values), self.registry, map_day, datetime.now(UTC)
            )
            if f.unit.startswith("province:")
        ]
        ordered = sorted(
            remapped,
            key=lambda f: (not f.rollup.reporters_reported, -(f.rollup.value or 0.0), f.unit),
        )
        rows = [
            html.row(
                [
                    f'<a href="{href(f"/units/{f.unit}", period=period.label)}">{esc(f.name)}</a>',
                    esc(", ".join(self._name(p, period.end) for p in f.predecessors)),
                    esc(
                        f"{amount(indicator, f.rollup.value)} {figure_text(f.rollup)}".strip()
                        if f.rollup.reporters_reported
                        else "not reported"
                    ),
                    esc(f"{f.rollup.reporters_reported}/{f.rollup.reporters_expected}"),
                ],
                attrs=f' data-unit="{esc(f.unit)}"',
            )
            for f in ordered
        ]
        caption = f"{period.label} on today's {len(remapped)} provinces, from the units that formed each"
        table = html.table(
            ["Province today", "Formed from", "Value", "Reported"], rows, css="ranking today", caption=caption
        )
        return f"<h2>Ranking on today's map</h2>{table}"

    @staticmethod
    def _tile_text(indicator: Indicator, number: float | None) -> str:
        if number is None:
            return NO_VALUE
        if indicator.kind == "flag":
            return "yes" if number else "no"
        if indicator.kind == "count":
            return f"{number / 1000:.1f}k" if number >= 10_000 else f"{number:,.0f}"
        return f"{number * 100:.0f}%"

    def _code(self, reporter: str) -> str:
        found = self.registry.get(reporter)
        return found.code if found is not None else reporter.partition(":")[2]

    def _name(self, reporter: str, day: date | None = None) -> str:
        """The reporter's name on ``day`` (a unit may have had another name then), or its latest."""
        found = self.registry.get(reporter)
        if found is None:
            return reporter
        return found.name_on(day) if day is not None else found.name

    def _history(self, indicator: Indicator, period: Period, series: Sequence[Rollup]) -> str:
        points = [(r.period, r.value) for r in series if r.value is not None]
        texts = [amount(indicator, v) for _, v in points]
        milestone = milestone_in_force(indicator, period)
        target = milestone.value if milestone else None
        return html.history_chart(
            points, target, texts, f"target {amount(indicator, target)}" if target else ""
        )

    @staticmethod
    def _alerts(alerts: Sequence[AlertEvent]) -> str:
        if not alerts:
            return '<p class="muted" id="alerts">None.</p>'
        rows = [
            html.row(
                [
                    html.badge(a.severity, a.severity),
                    esc(a.rule.replace("_", " ")),
                    esc(a.period),
                    esc(a.scope.replace("_", " ")),
                    esc(a.summary),
                    esc(a.starts_at.strftime("%Y-%m-%d %H:%M")),
                ]
            )
            for a in sorted(alerts, key=lambda a: (a.period, a.rule, a.scope), reverse=True)
        ]
        return html.table(["Severity", "Rule", "Period", "Scope", "Summary", "Since"], rows, css="alerts")

    def _rankings(self, indicator: Indicator, period: Period, values: Mapping[str, ReporterValue]) -> str:
        parts = []
        raw = {reporter: v.value for reporter, v in values.items()}
        for group in indicator.groups:
            members = self.registry.members(group, period.end)
            target = milestone_in_force(indicator, period)
            ranked = ranking(indicator, {m: self._name(m, period.end) for m in members}, raw, target)
            behind = sum(r.status == "behind" for r in ranked)
            missing = sum(r.status == "not reported" for r in ranked)
            rows = [
                html.row(
                    [
                        esc(r.rank if r.rank is not None else NO_VALUE),
                        f'<a href="{href(f"/units/{r.reporter}", period=period.label)}">{esc(r.name)}</a>',
                        esc(r.reporter),
                        esc(r.text),
                        html.badge(r.status, r.status.replace(" ", "-")),
                    ],
                    css=r.status.replace(" ", "-"),
                    attrs=f' data-unit="{esc(r.reporter)}"',
                )
                for r in ranked
            ]
            caption = (
                f"{group.replace('_', ' ')}: {len(ranked)} expected, {behind} behind, {missing} not reported"
            )
            parts.append(
                html.table(["#", "Unit", "Id", "Value", "Status"], rows, css="ranking", caption=caption)
            )
        return f'<section class="rankings"><h2>Ranking by group</h2>{"".join(parts)}</section>'

    # --- one unit -----------------------------------------------------------------------------

    async def unit(self, reporter_id: str, requested: str | None) -> str:
        reporter = self.registry.get(reporter_id)
        if reporter is None:
            raise UnknownName(f"no reporter {reporter_id!r}")
        national = await self.reads.national_figures()
        selected, offered = self._selected(requested, (r.period for r in national))
        labels = {i.id: self._label_for(i, selected) for i in self.catalog.indicators}
        active = reporter.active_on(selected.end)
        name = reporter.name_on(selected.end)
        # A unit formed later shows the period through the units it was formed from (remap).
        sources = [reporter.id] if active else self._predecessors(reporter, selected)
        periods = sorted(set(labels.values()))
        values = await self.reads.values_of_reporters(sources, periods)
        figures = {(r.indicator, r.period): r for r in national if r.period in labels.values()}
        statuses: list[tuple[UnitStatus, str]] = []
        for indicator in self.catalog.indicators:
            label = labels[indicator.id]
            period = parse_period(label, indicator.period_type)
            expected = self.registry.expected(indicator.groups, period.end)
            olds = frozenset(s for s in sources if s in expected)
            if not olds:
                continue
            mine = {v.reporter: v for v in values if v.indicator == indicator.id and v.period == label}
            statuses.append(
                self._unit_row(indicator, period, reporter, olds, mine, figures.get((indicator.id, label)))
            )
        # The indicators the unit has reported first, those it has not after (each in catalog order).
        rows = [row for status, row in sorted(statuses, key=lambda pair: pair[0] == "not reported")]
        note = (
            ""
            if active
            else f'<p class="note">{esc(name)} did not exist in {esc(selected.label)}: its figures'
            " are those of the units it was formed from"
            f" ({esc(', '.join(self._name(s, selected.end) for s in sources))}), taken together.</p>"
        )
        content = (
            f'<section class="intro"><h1>{esc(name)}</h1>'
            f"{html.period_form(f'/units/{reporter.id}', offered, selected.label, {})}"
            f'<p class="muted">{esc(reporter.id)} · {esc(reporter.kind)}{self._validity(reporter)}</p>'
            f"{note}</section>"
            + (
                html.table(
                    ["Indicator", "Period", "This unit", "Status", "National", "Target"], rows, css="unit"
                )
                if rows
                else '<p class="empty">No indicator expects a report from this unit in this period.</p>'
            )
        )
        crumbs = f'<a href="{href("/", period=selected.label)}">National</a> &rsaquo; {esc(name)}'
        return await self._page(f"{name} {selected.label}", content, crumbs)

    def _predecessors(self, reporter: Reporter, selected: Period) -> list[str]:
        return sorted(
            r.id
            for r in self.registry.reporters.values()
            if r.kind == reporter.kind
            and r.active_on(selected.end)
            and self.registry.current_successor(r.id, reporter.valid_from or selected.end) == reporter.id
        )

    def _validity(self, reporter: Reporter) -> str:
        parts = []
        if reporter.valid_from:
            parts.append(f" · from {reporter.valid_from.isoformat()}")
        if reporter.valid_to:
            parts.append(f" · until {reporter.valid_to.isoformat()}")
        if reporter.successor and reporter.successor != reporter.id:
            successor = self._name(reporter.successor)
            parts.append(
                f' · continued by <a href="{href(f"/units/{reporter.successor}")}">{esc(successor)}</a>'
            )
        return "".join(parts)

    def _unit_row(
        self,
        indicator: Indicator,
        period: Period,
        reporter: Reporter,
        olds: frozenset[str],
        mine: Mapping[str, ReporterValue],
        national: Rollup | None,
    ) -> tuple[UnitStatus, str]:
        if len(olds) == 1 and reporter.id in olds:
            value = mine.get(reporter.id)
            number = unit_value(indicator, value.value) if value is not None else None
            text = unit_text(indicator, value.value) if value is not None else "not reported"
        else:
            figure = on_map_of(
                indicator,
                period,
                _snapshots(mine),
                self.registry,
                reporter.valid_from or period.end,
                datetime.now(UTC),
            )
            combined = next((f.rollup for f in figure if f.unit == reporter.id), None)
            number = combined.value if combined is not None and combined.reporters_reported else None
            text = (
                f"{amount(indicator, number)} {figure_text(combined)}".strip()
                if number is not None and combined is not None
                else "not reported"
            )
        status = unit_status(indicator, number, milestone_in_force(indicator, period))
        link = href(f"/indicators/{indicator.id}", period=period.label)
        return status, html.row(
            [
                f'<a href="{link}">{esc(indicator.name)}</a>',
                esc(period.label),
                f'<span class="value">{esc(text)}</span>',
                html.badge(status, status.replace(" ", "-")),
                esc(
                    f"{amount(indicator, national.value)} {figure_text(national)}".strip()
                    if national
                    else NO_VALUE
                ),
                esc(target_text(indicator, period)),
            ],
            attrs=f' data-indicator="{esc(indicator.id)}"',
        )
