"""Reporting periods (2024, 2024-H1, 2024-Q3, 2024-07): parsing, bounds and period types."""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

PeriodType = Literal["year", "half", "quarter", "month"]

_PATTERNS: dict[PeriodType, re.Pattern[str]] = {
    # ASCII digits and fullmatch only: "\d" takes any Unicode digit and "$" a trailing newline,
    # and either would give one period two spellings (two aggregation keys).
    "year": re.compile(r"(?P<year>[0-9]{4})"),
    "half": re.compile(r"(?P<year>[0-9]{4})-H(?P<n>[12])"),
    "quarter": re.compile(r"(?P<year>[0-9]{4})-Q(?P<n>[1-4])"),
    "month": re.compile(r"(?P<year>[0-9]{4})-(?P<n>0[1-9]|1[0-2])"),
}
_MONTHS_PER: dict[PeriodType, int] = {"year": 12, "half": 6, "quarter": 3, "month": 1}
EXAMPLES: dict[PeriodType, str] = {
    "year": "2024",
    "half": "2024-H1",
    "quarter": "2024-Q3",
    "month": "2024-07",
}


class PeriodError(ValueError):
    """The text is not a period of the expected type."""


@dataclass(frozen=True, order=True)
class Period:
    """A calendar period; ``start`` and ``end`` are the first and last day it covers."""

    start: date
    end: date
    type: PeriodType
    label: str

    def __str__(self) -> str:
        return self.label


def period_type_of(text: str) -> PeriodType | None:
    """Which period type the text is written as, or None when it is none of them."""
    for kind, pattern in _PATTERNS.items():
        if pattern.fullmatch(text):
            return kind
    return None


@functools.lru_cache(maxsize=4096)  # every report's period is parsed; labels repeat (5% of a batch)
def parse_period(text: str, expected: PeriodType | None = None) -> Period:
    """Parse a period label, checking it is of ``expected`` type when given."""
    kind = period_type_of(text)
    if kind is None:
        raise PeriodError(f"{text!r} is not a period; write e.g. 2024, 2024-H1, 2024-Q3 or 2024-07")
    if expected is not None and kind != expected:
        raise PeriodError(
            f"period {text!r} is a {kind}, but this indicator is reported per {expected};"
            f" write e.g. {EXAMPLES[expected]}"
        )
    match = _PATTERNS[kind].fullmatch(text)
    assert match is not None
    year = int(match["year"])
    index = int(match["n"]) if kind != "year" else 1
    months = _MONTHS_PER[kind]
    first_month = (index - 1) * months + 1
    last_month = first_month + months - 1
    try:
        start = date(year, first_month, 1)
        end = date(year, last_month, calendar.monthrange(year, last_month)[1])
    except ValueError as error:  # year 0000: outside the calendar
        raise PeriodError(f"period {text!r} is not a calendar period: {error}") from None
    return Period(start=start, end=end, type=kind, label=text)


def _label(kind: PeriodType, year: int, index: int) -> str:
    if kind == "year":
        return f"{year:04d}"
    if kind == "month":
        return f"{year:04d}-{index:02d}"
    return f"{year:04d}-{'H' if kind == 'half' else 'Q'}{index}"


def period_of(day: date, kind: PeriodType) -> Period:
    """The period of type ``kind`` that contains ``day``."""
    index = (day.month - 1) // _MONTHS_PER[kind] + 1
    return parse_period(_label(kind, day.year, index), kind)


def shifted(period: Period, steps: int) -> Period:
    """The period ``steps`` periods later (earlier when negative), of the same type."""
    per_year = 12 // _MONTHS_PER[period.type]
    index = (period.start.month - 1) // _MONTHS_PER[period.type] + steps
    year, index = period.start.year + index // per_year, index % per_year + 1
    return parse_period(_label(period.type, year, index), period.type)
