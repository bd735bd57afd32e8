"""The reporter registry: provinces, ministries and national bodies with validity dates and groups."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from typing import Literal

import yaml

ReporterKind = Literal["province", "ministry", "national"]

PROVINCES_MERGED_ON = date(2025, 7, 1)
"""The 63 provinces became 34 on this day (reference/provinces_2025.csv)."""
MINISTRIES_MERGED_ON = date(2025, 3, 1)
"""The 22 ministries became 17 on this day (reference/ministries_2025.csv)."""


@dataclass(frozen=True)
class Reporter:
    """A reporting unit; valid from ``valid_from`` to ``valid_to`` inclusive (None: unbounded)."""

    id: str
    kind: ReporterKind
    code: str
    name: str
    valid_from: date | None = None
    valid_to: date | None = None
    successor: str | None = None
    merged_from: tuple[str, ...] = ()

    def active_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


@dataclass(frozen=True)
class Group:
    """A named set of reporters: every unit of the given kinds, minus excluded codes."""

    name: str
    kinds: tuple[ReporterKind, ...]
    exclude: frozenset[str] = frozenset()

    def admits(self, reporter: Reporter) -> bool:
        return reporter.kind in self.kinds and reporter.code not in self.exclude


@dataclass(frozen=True)
class Registry:
    """Every reporter that ever existed, and the groups they form on any given day."""

    reporters: dict[str, Reporter]
    groups: dict[str, Group]
    _members_cache: dict[tuple[str, date], frozenset[str]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _expected_cache: dict[tuple[tuple[str, ...], date], frozenset[str]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _sorted_cache: dict[tuple[tuple[str, ...], date], tuple[str, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def get(self, reporter_id: str) -> Reporter | None:
        return self.reporters.get(reporter_id)

    def members(self, group: str, day: date) -> frozenset[str]:
        """The reporters of ``group`` in force on ``day``."""
        key = (group, day)
        cached = self._members_cache.get(key)
        if cached is None:
            spec = self.groups[group]
            cached = frozenset(r.id for r in self.reporters.values() if spec.admits(r) and r.active_on(day))
            self._members_cache[key] = cached
        return cached

    def expected(self, groups: Iterable[str], day: date) -> frozenset[str]:
        """The union of the groups' members on ``day``: who must report."""
        key = (tuple(groups), day)
        cached = self._expected_cache.get(key)
        if cached is None:
            cached = frozenset().union(*(self.members(group, day) for group in key[0]))
            self._expected_cache[key] = cached
        return cached

    def expected_sorted(self, groups: Iterable[str], day: date) -> tuple[str, ...]:
        """``expected``, sorted: the aggregator walks it per rollup, and sorting it each time cost more."""
        key = (tuple(groups), day)
        cached = self._sorted_cache.get(key)
        if cached is None:
            cached = tuple(sorted(self.expected(key[0], day)))
            self._sorted_cache[key] = cached
        return cached

    def current_successor(self, reporter_id: str, day: date) -> str | None:
        """Follow successors from a retired unit to the one in force on ``day``."""
        seen: set[str] = set()
        current = self.reporters.get(reporter_id)
        while current is not None and not current.active_on(day) and current.successor:
            if current.id in seen:
                return None
            seen.add(current.id)
            current = self.reporters.get(current.successor)
        return current.id if current is not None and current.active_on(day) else None


def _rows(folder: Traversable, name: str) -> list[dict[str, str]]:
    text = folder.joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _two_maps(
    kind: ReporterKind,
    before: list[dict[str, str]],
    after: list[dict[str, str]],
    cutover: date,
    name_field: str,
) -> list[Reporter]:
    """Join a before/after pair of reference lists into reporters with validity intervals.

    A code on both lists is one continuing unit; a code only on the first retires the day before
    ``cutover`` and names its successor; a code only on the second starts on ``cutover``.
    """
    after_codes = {row["code"] for row in after}
    before_codes = {row["code"] for row in before}
    last_day = date.fromordinal(cutover.toordinal() - 1)
    reporters: list[Reporter] = []
    for row in before:
        code = row["code"]
        if code in after_codes:
            continue
        reporters.append(
            Reporter(
                id=f"{kind}:{code}",
                kind=kind,
                code=code,
                name=row[name_field],
                valid_to=last_day,
                successor=f"{kind}:{row['successor_2025']}",
            )
        )
    for row in after:
        code = row["code"]
        reporters.append(
            Reporter(
                id=f"{kind}:{code}",
                kind=kind,
                code=code,
                name=row[name_field],
                valid_from=None if code in before_codes else cutover,
                merged_from=tuple(f"{kind}:{c}" for c in row["merged_from"].split(";") if c),
            )
        )
    return reporters


def _optional_date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def load_registry(folder: Traversable | None = None) -> Registry:
    """Build the registry from the reference CSVs and groups.yaml in ``folder``."""
    data = folder if folder is not None else resources.files("dxpulse.data")
    ref = data.joinpath("registry")
    reporters = _two_maps(
        "province",
        _rows(ref, "provinces_2024.csv"),
        _rows(ref, "provinces_2025.csv"),
        PROVINCES_MERGED_ON,
        "name_ascii",
    ) + _two_maps(
        "ministry",
        _rows(ref, "ministries_2024.csv"),
        _rows(ref, "ministries_2025.csv"),
        MINISTRIES_MERGED_ON,
        "name_en",
    )
    for row in _rows(ref, "national.csv"):
        reporters.append(
            Reporter(
                id=f"national:{row['code']}",
                kind="national",
                code=row["code"],
                name=row["name_en"],
                valid_from=_optional_date(row["valid_from"]),
                valid_to=_optional_date(row["valid_to"]),
                successor=f"national:{row['successor']}" if row["successor"] else None,
            )
        )
    spec = yaml.safe_load(data.joinpath("groups.yaml").read_text(encoding="utf-8"))
    groups = {
        name: Group(name=name, kinds=tuple(g["kinds"]), exclude=frozenset(g.get("exclude", ())))
        for name, g in spec["groups"].items()
    }
    return Registry(reporters={r.id: r for r in reporters}, groups=groups)


@cache
def default_registry() -> Registry:
    """The packaged registry, read once per process."""
    return load_registry()
