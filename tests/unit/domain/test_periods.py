"""Reporting periods: parsing, first and last day, and the period type an indicator expects."""

from __future__ import annotations

from datetime import date

import pytest

from dxpulse.domain.periods import PeriodError, PeriodType, parse_period, period_of, period_type_of, shifted


@pytest.mark.parametrize(
    ("text", "kind", "start", "end"),
    [
        ("2024", "year", date(2024, 1, 1), date(2024, 12, 31)),
        ("2024-H1", "half", date(2024, 1, 1), date(2024, 6, 30)),
        ("2024-H2", "half", date(2024, 7, 1), date(2024, 12, 31)),
        ("2024-Q1", "quarter", date(2024, 1, 1), date(2024, 3, 31)),
        ("2024-Q2", "quarter", date(2024, 4, 1), date(2024, 6, 30)),
        ("2024-Q3", "quarter", date(2024, 7, 1), date(2024, 9, 30)),
        ("2024-Q4", "quarter", date(2024, 10, 1), date(2024, 12, 31)),
        ("2024-02", "month", date(2024, 2, 1), date(2024, 2, 29)),
        ("2025-02", "month", date(2025, 2, 1), date(2025, 2, 28)),
        ("2024-07", "month", date(2024, 7, 1), date(2024, 7, 31)),
        ("2024-12", "month", date(2024, 12, 1), date(2024, 12, 31)),
        ("2025-H2", "half", date(2025, 7, 1), date(2025, 12, 31)),
    ],
)
def test_period_parses_with_its_first_and_last_day(
    text: str, kind: PeriodType, start: date, end: date
) -> None:
    period = parse_period(text)
    assert (period.type, period.start, period.end, period.label) == (kind, start, end, text)
    assert str(period) == text
    assert period_type_of(text) == kind


def test_period_of_the_expected_type_parses() -> None:
    assert parse_period("2024-H2", "half").end == date(2024, 12, 31)


@pytest.mark.parametrize(
    ("text", "expected", "example"),
    [
        ("2024-Q1", "half", "2024-H1"),
        ("2024", "half", "2024-H1"),
        ("2024-H1", "year", "2024"),
        ("2024-07", "quarter", "2024-Q3"),
        ("2024-Q3", "month", "2024-07"),
    ],
)
def test_wrong_period_type_names_expected_type_with_example(
    text: str, expected: PeriodType, example: str
) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(text, expected)
    message = str(caught.value)
    assert f"per {expected}" in message
    assert example in message
    assert text in message


@pytest.mark.parametrize(
    "text",
    [
        "",
        "24",
        "2024-H3",
        "2024-H0",
        "2024-Q0",
        "2024-Q5",
        "2024-00",
        "2024-13",
        "2024-1",
        "2024-h1",
        "2024H1",
        " 2024",
        "2024 ",
        "2024-H1-extra",
        "H1-2024",
        "twenty",
    ],
)
def test_garbage_period_is_refused(text: str) -> None:
    assert period_type_of(text) is None
    with pytest.raises(PeriodError, match="is not a period"):
        parse_period(text)


@pytest.mark.parametrize("text", ["2024\n", "2024-H1\n"])
def test_period_with_trailing_newline_is_refused(text: str) -> None:
    # A label with a trailing newline would become a second aggregation key for the same period.
    with pytest.raises(PeriodError):
        parse_period(text)


@pytest.mark.parametrize("text", ["\u0662\u0660\u0662\u0664", "\uff12\uff10\uff12\uff14-H1"])
def test_period_written_in_non_ascii_digits_is_refused(text: str) -> None:
    with pytest.raises(PeriodError):
        parse_period(text)


@pytest.mark.parametrize("text", ["0000", "0000-H1"])
def test_period_outside_the_calendar_raises_period_error(text: str) -> None:
    # Callers (validation) catch PeriodError only; a bare ValueError escapes them.
    with pytest.raises(PeriodError):
        parse_period(text)


def test_last_periods_of_year_9999_fit_the_calendar() -> None:
    assert parse_period("9999-H1").end == date(9999, 6, 30)
    assert parse_period("9999-H2").end == date(9999, 12, 31)


def test_periods_order_by_start_day() -> None:
    labels = ["2025-H1", "2024-Q4", "2024", "2024-07"]
    assert [p.label for p in sorted(parse_period(t) for t in labels)] == [
        "2024",
        "2024-07",
        "2024-Q4",
        "2025-H1",
    ]


@pytest.mark.parametrize(
    ("day", "kind", "label"),
    [
        (date(2026, 11, 23), "year", "2026"),
        (date(2026, 6, 30), "half", "2026-H1"),
        (date(2026, 7, 1), "half", "2026-H2"),
        (date(2026, 3, 31), "quarter", "2026-Q1"),
        (date(2026, 10, 1), "quarter", "2026-Q4"),
        (date(2026, 2, 28), "month", "2026-02"),
    ],
)
def test_period_of_a_day(day: date, kind: PeriodType, label: str) -> None:
    assert period_of(day, kind).label == label


@pytest.mark.parametrize(
    ("label", "steps", "shifted_label"),
    [
        ("2026-H1", -1, "2025-H2"),
        ("2026-H1", -3, "2024-H2"),
        ("2025-H2", 1, "2026-H1"),
        ("2026-Q1", -1, "2025-Q4"),
        ("2026-12", 1, "2027-01"),
        ("2026-01", -13, "2024-12"),
        ("2026", -2, "2024"),
        ("2026-Q3", 0, "2026-Q3"),
    ],
)
def test_shifted_periods_cross_year_ends(label: str, steps: int, shifted_label: str) -> None:
    assert shifted(parse_period(label), steps).label == shifted_label
