"""What the web scoreboard shows, without I/O: progress words, unit values, rankings, colours and tiles."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from dxpulse.domain.catalog import Indicator, Target, milestone_in_force, trajectory_start
from dxpulse.domain.periods import Period
from schemas import CatalogValue, CountValue, FlagValue, RatioValue, ReportValue

ProgressWord = Literal[
    "Target achieved",
    "On track",
    "Progress made but acceleration needed",
    "Limited progress",
    "Deterioration",
    "Not assessed",
]
"""Open SDG's progress categories (its Statistics Canada methodology), and "Not assessed" where the
figure has no target or nothing to measure its pace from."""

ON_TRACK_RATIO = 0.95
"""Open SDG: the observed pace is at least 95% of the pace the target needs."""
ACCELERATION_RATIO = 0.60
"""Open SDG: at least 60% of the needed pace is progress that needs acceleration."""


@dataclass(frozen=True)
class Progress:
    """A figure's progress category and the ratio of its observed pace to the needed one."""

    word: ProgressWord
    ratio: float | None = None

    @property
    def css(self) -> str:
        """A short class name for the word: achieved, on-track, acceleration, limited, deterioration, none."""
        return _CSS[self.word]


_CSS: dict[ProgressWord, str] = {
    "Target achieved": "achieved",
    "On track": "on-track",
    "Progress made but acceleration needed": "acceleration",
    "Limited progress": "limited",
    "Deterioration": "deterioration",
    "Not assessed": "none",
}


def progress(
    indicator: Indicator,
    period: Period,
    value: float | None,
    as_of: date,
    earlier: Sequence[tuple[date, float]] = (),
) -> Progress:
    """Open SDG's category of ``period``'s ``value`` on ``as_of`` against the milestone in force for
    the period (``milestone_in_force``).

    The pace is measured from where the catalog starts the milestone's line (``trajectory_start``:
    its baseline, or the milestone before it), or else from the earliest of the ``earlier`` figures
    (date, value) before ``as_of``; the ratio R is the observed gain per day over the gain per day
    the milestone needs from that start. Past the deadline a figure short of its target is never
    "On track", however close.
    """
    target = milestone_in_force(indicator, period)
    if target is None or value is None:
        return Progress("Not assessed")
    if value >= target.value:
        return Progress("Target achieved", None)
    start = _start(indicator, target, as_of, earlier)
    if start is None:
        return Progress("Not assessed")
    start_day, start_value = start
    needed_days = (target.deadline - start_day).days
    needed_gain = target.value - start_value
    if needed_days <= 0 or needed_gain <= 0:
        return Progress("Not assessed")
    observed_rate = (value - start_value) / (as_of - start_day).days
    ratio = observed_rate / (needed_gain / needed_days)
    if ratio >= ON_TRACK_RATIO and as_of <= target.deadline:
        return Progress("On track", ratio)
    if ratio >= ACCELERATION_RATIO:
        return Progress("Progress made but acceleration needed", ratio)
    if ratio >= 0:
        return Progress("Limited progress", ratio)
    return Progress("Deterioration", ratio)


def _start(
    indicator: Indicator, target: Target, as_of: date, earlier: Sequence[tuple[date, float]]
) -> tuple[date, float] | None:
    baseline = trajectory_start(indicator, target)
    if baseline is not None and baseline.date < as_of:
        return baseline.date, baseline.value
    before = sorted(point for point in earlier if point[0] < as_of)
    return before[0] if before else None


# --- one unit's value -------------------------------------------------------------------------


def unit_value(indicator: Indicator, value: ReportValue) -> float | None:
    """A reporter's value as one number: 1 or 0 for a flag, the share for ratios and catalogs, the count."""
    if isinstance(value, FlagValue):
        return 1.0 if value.value else 0.0
    if isinstance(value, RatioValue):
        return value.numerator / value.denominator if value.denominator else None
    if isinstance(value, CountValue):
        return float(value.value)
    assert isinstance(value, CatalogValue)
    items = set(indicator.items)
    return len(items.intersection(value.done)) / len(items) if items else None


def unit_text(indicator: Indicator, value: ReportValue) -> str:
    """A reporter's value as a reader sees it: "connected", "61.0% (1,525/2,500)", "1,234", "43/53"."""
    if isinstance(value, FlagValue):
        return "connected" if value.value else "not connected"
    if isinstance(value, RatioValue):
        return f"{percent(unit_value(indicator, value))} ({value.numerator:,.0f}/{value.denominator:,.0f})"
    if isinstance(value, CountValue):
        return f"{value.value:,.0f}"
    assert isinstance(value, CatalogValue)
    return f"{len(set(indicator.items).intersection(value.done))}/{len(indicator.items)}"


NO_VALUE = "\u2013"
"""An en dash: what a cell shows where there is no figure."""


def percent(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value * 100:.1f}%"


def amount(indicator: Indicator, value: float | None) -> str:
    """A figure in the indicator's terms: "50,350" for counts, "97.6%" for shares."""
    if value is None:
        return NO_VALUE
    return f"{value:,.0f}" if indicator.kind == "count" else percent(value)


# --- ranking ------------------------------------------------------------------------------------

UnitStatus = Literal["met", "behind", "reported", "not reported"]


@dataclass(frozen=True)
class RankedUnit:
    """One expected reporter in a ranking: its place (None when it has not reported) and status."""

    rank: int | None
    reporter: str
    name: str
    value: float | None
    text: str
    status: UnitStatus


def unit_status(indicator: Indicator, value: float | None, target: Target | None) -> UnitStatus:
    """Whether a unit's own value meets the target: flags and shares only, whose target is a share
    every unit can be held to; a count's target is a national total."""
    if value is None:
        return "not reported"
    if target is None or indicator.kind == "count":
        return "reported"
    return "met" if value >= target.value else "behind"


def ranking(
    indicator: Indicator,
    expected: Mapping[str, str],
    values: Mapping[str, ReportValue],
    target: Target | None,
) -> list[RankedUnit]:
    """The expected reporters (id → name), highest value first (ties share a place, by id), then those
    that have not reported, by id; each marked against ``target`` (``unit_status``)."""
    scored = []
    for reporter in sorted(expected):
        value = values.get(reporter)
        number = unit_value(indicator, value) if value is not None else None
        text = unit_text(indicator, value) if value is not None else "not reported"
        scored.append((reporter, number, text))
    reported = sorted((s for s in scored if s[1] is not None), key=lambda s: (-(s[1] or 0.0), s[0]))
    rows: list[RankedUnit] = []
    previous: float | None = None
    place = 0
    for position, (reporter, number, text) in enumerate(reported, start=1):
        if number != previous:
            place, previous = position, number
        rows.append(
            RankedUnit(
                place, reporter, expected[reporter], number, text, unit_status(indicator, number, target)
            )
        )
    rows += [
        RankedUnit(None, reporter, expected[reporter], None, text, "not reported")
        for reporter, number, text in scored
        if number is None
    ]
    return rows


# --- colours ------------------------------------------------------------------------------------

PALETTE: tuple[str, ...] = ("#edf8fb", "#b3cde3", "#8c96c6", "#8856a7", "#810f7c")
"""Five classes from light to dark (lowest to highest value): ColorBrewer's BuPu, readable by
colour-blind readers and in greyscale."""
NO_REPORT_COLOUR = "#d9d9d9"
"""A unit that has not reported: grey, outside the scale."""
DARK_TILES = frozenset(PALETTE[3:])
"""Fills dark enough to need white text."""


def score(indicator: Indicator, value: float | None, largest: float | None) -> float | None:
    """A unit's value on a 0-1 scale: shares as they are, counts against the ``largest`` unit's."""
    if value is None:
        return None
    if indicator.kind == "count":
        return value / largest if largest else 0.0
    return min(1.0, max(0.0, value))


def colour(scored: float | None) -> str:
    """The fill of a 0-1 score: one of the five classes, grey for None."""
    if scored is None:
        return NO_REPORT_COLOUR
    return PALETTE[min(len(PALETTE) - 1, int(scored * len(PALETTE)))]


def legend(indicator: Indicator, largest: float | None) -> list[tuple[str, str]]:
    """(fill, label) per class, as the map's key shows them."""
    classes = len(PALETTE)
    if indicator.kind == "flag":
        return [(PALETTE[0], "not connected"), (PALETTE[-1], "connected"), (NO_REPORT_COLOUR, "not reported")]
    top = (largest or 0.0) if indicator.kind == "count" else 1.0
    keys = []
    for index, fill in enumerate(PALETTE):
        low, high = top * index / classes, top * (index + 1) / classes
        keys.append((fill, f"{amount(indicator, low)} {NO_VALUE} {amount(indicator, high)}"))
    return [*keys, (NO_REPORT_COLOUR, "not reported")]


# --- the tile maps ------------------------------------------------------------------------------

Cell = tuple[int, int]
"""(column, row) of a tile, row 0 at the top (north)."""

PROVINCES_2024: dict[str, Cell] = {
    # North-west and north-east
    "12": (1, 0), "10": (2, 0), "02": (3, 0), "04": (4, 0),
    "11": (0, 1), "14": (1, 1), "15": (2, 1), "08": (3, 1), "06": (4, 1), "20": (5, 1),
    "17": (1, 2), "25": (2, 2), "19": (3, 2), "24": (4, 2), "22": (5, 2),
    # Red River delta
    "26": (2, 3), "01": (3, 3), "27": (4, 3), "30": (5, 3), "31": (6, 3),
    "35": (3, 4), "33": (4, 4), "34": (5, 4),
    "37": (3, 5), "36": (4, 5),
    # North central and the central coast
    "38": (2, 6),
    "40": (2, 7), "42": (3, 7),
    "44": (3, 8), "45": (4, 8),
    "46": (4, 9), "48": (5, 9),
    # Central Highlands beside the south central coast
    "62": (3, 10), "49": (4, 10), "51": (5, 10),
    "64": (3, 11), "52": (4, 11),
    "66": (3, 12), "54": (4, 12),
    "67": (2, 13), "68": (3, 13), "56": (4, 13),
    # South-east
    "70": (1, 14), "74": (2, 14), "75": (3, 14), "58": (4, 14),
    "72": (1, 15), "79": (2, 15), "77": (3, 15), "60": (4, 15),
    # Mekong delta
    "89": (0, 16), "87": (1, 16), "80": (2, 16), "82": (3, 16),
    "91": (0, 17), "92": (1, 17), "86": (2, 17), "83": (3, 17),
    "93": (1, 18), "94": (2, 18), "84": (3, 18),
    "96": (0, 19), "95": (1, 19),
}  # fmt: skip
"""The 63 provinces of 2024 (provinces_2024.csv), north to south."""

PROVINCES_2025: dict[str, Cell] = {
    "12": (1, 0), "15": (2, 0), "08": (3, 0), "04": (4, 0),
    "11": (0, 1), "14": (1, 1), "25": (2, 1), "19": (3, 1), "20": (4, 1),
    "01": (2, 2), "24": (3, 2), "22": (4, 2),
    "37": (2, 3), "33": (3, 3), "31": (4, 3),
    "38": (2, 4),
    "40": (2, 5), "42": (3, 5),
    "44": (3, 6),
    "46": (3, 7), "48": (4, 7),
    "51": (4, 8),
    "52": (4, 9),
    "66": (4, 10),
    "68": (3, 11), "56": (4, 11),
    "80": (1, 12), "75": (2, 12),
    "91": (0, 13), "82": (1, 13), "79": (2, 13),
    "92": (1, 14), "86": (2, 14),
    "96": (1, 15),
}  # fmt: skip
"""The 34 provinces from 2025-07-01 (provinces_2025.csv), north to south."""

LAYOUTS: tuple[dict[str, Cell], ...] = (PROVINCES_2024, PROVINCES_2025)
FALLBACK_COLUMNS = 8


def tile_cells(codes: Collection[str]) -> dict[str, Cell]:
    """A cell per province code: the hand-made layout whose codes are exactly ``codes``, or, for a
    registry with other provinces, a plain grid in code order."""
    wanted = set(codes)
    for layout in LAYOUTS:
        if set(layout) == wanted:
            return dict(layout)
    return {code: (i % FALLBACK_COLUMNS, i // FALLBACK_COLUMNS) for i, code in enumerate(sorted(wanted))}


def sign_in_target(requested: str | None) -> str:
    """Where to go after signing in: ``requested`` if it is a path on this site, "/" otherwise.

    A browser reads ``//host``, ``/\\host`` and a path with a tab or newline in it as another site,
    so only a single leading slash followed by printable text without backslashes is kept.
    """
    if (
        not requested
        or not requested.startswith("/")
        or requested.startswith("//")
        or "\\" in requested
        or not requested.isprintable()
        or not requested.isascii()
    ):
        return "/"
    return requested
