"""One benchmark figure beside its same-run baseline, and how the suite prints them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table


@dataclass(frozen=True)
class Figure:
    """A measured figure, the raw-client baseline measured in the same run, and the issue's target."""

    scenario: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None

    def cells(self) -> list[str]:
        ratio = self.ratio
        verdict = {True: "met", False: "MISSED", None: ""}[self.met]
        return [
            self.scenario,
            self.metric,
            f"{_num(self.value)} {self.unit}",
            f"{_num(self.baseline)} {self.unit} ({self.baseline_label})" if self.baseline is not None else "",
            f"{ratio:.2f}" if ratio is not None else "",
            self.target,
            verdict,
            self.note,
        ]


HEADERS = ("scenario", "figure", "value", "baseline (same run)", "ratio", "target", "", "note")


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def figure_table(figures: Sequence[Figure], title: str) -> Table:
    table = Table(title=title)
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for figure in figures:
        table.add_row(*figure.cells())
    return table


def markdown(figures: Sequence[Figure]) -> str:
    """The figures as a GitHub table, for BENCHMARKS.md."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for figure in figures:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in figure.cells()) + " |")
    return "\n".join(lines) + "\n"
