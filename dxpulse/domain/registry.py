"""The reporter registry: provinces, ministries and national bodies with validity dates and groups."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache, partial
from importlib import resources
from importlib.abc import Traversable
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from dxpulse.domain.datafile import CsvRow, CsvTable, DataError, DataProblem, YamlDocument

ReporterKind = Literal["province", "ministry", "national"]

PROVINCES_MERGED_ON = date(2025, 7, 1)
"""The 63 provinces became 34 on this day (provinces_2025.csv in the packaged versions.yaml)."""
MINISTRIES_MERGED_ON = date(2025, 3, 1)
"""The 22 ministries became 17 on this day (ministries_2025.csv in the packaged versions.yaml)."""


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
    names: tuple[tuple[date | None, str], ...] = field(default=(), compare=False)
    """(from, name) for each list the unit is on, oldest first: a unit that goes on under a new name
    (province 15, Yên Bái until 2025-06-30, then Lào Cai) had another name before. ``name`` is the last."""

    def active_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def name_on(self, day: date) -> str:
        """The unit's name on the list in force on ``day``."""
        current = self.name
        for start, name in reversed(self.names):
            current = name
            if start is None or start <= day:
                break
        return current


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


VERSIONS_FILE = "versions.yaml"
GROUPS_FILE = "groups.yaml"
NATIONAL_FILE = "national.csv"


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Version(_Entry):
    """One reference list of a kind's units, and the day it comes into force."""

    file: str = Field(pattern=r"^[\w.-]+\.csv$", description="A CSV file in the registry folder.")
    from_: date | None = Field(
        default=None, alias="from", description="The first day the list is in force; none on the first."
    )


class _Versions(_Entry):
    """versions.yaml: each kind's reference lists, oldest first."""

    provinces: tuple[_Version, ...] = Field(min_length=1)
    ministries: tuple[_Version, ...] = Field(min_length=1)


class _GroupSpec(_Entry):
    kinds: tuple[ReporterKind, ...] = Field(min_length=1)
    exclude: tuple[str, ...] = ()


class _Groups(_Entry):
    """groups.yaml."""

    # A group's name is a rollup scope, part of the rollup keys: "indicator|period|scope".
    groups: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")], _GroupSpec] = Field(
        min_length=1
    )


@dataclass(frozen=True)
class _Kind:
    """How one kind of reporter is written in its CSV files."""

    kind: ReporterKind
    name_column: str
    code: re.Pattern[str]
    code_text: str


_UPPER = re.compile(r"[A-Z][A-Z0-9]{1,15}")
_LISTS = {
    "provinces": _Kind("province", "name_ascii", re.compile(r"[0-9]{2}"), "a two-digit code"),
    "ministries": _Kind("ministry", "name_en", _UPPER, "an upper-case code of letters and digits"),
}
"""The kinds whose units come in effective-dated lists (versions.yaml), by their key there."""
_NATIONAL = _Kind("national", "name_en", _UPPER, "an upper-case code of letters and digits")

T = TypeVar("T")


def load_registry(folder: Traversable | None = None) -> Registry:
    """The registry in ``folder`` (the packaged one by default): groups.yaml, national.csv, and
    versions.yaml with the reference lists it names (docs/operations/business-data.md).

    Refused with a ``DataError`` naming the file, line and field of every problem."""
    folder = folder if folder is not None else resources.files("dxpulse.data").joinpath("registry")
    if not folder.is_dir():
        raise DataError([DataProblem(str(folder), None, None, "no such folder")])
    problems: list[DataProblem] = []
    reporters: list[Reporter] = []
    versions = _attempt(problems, partial(_versions, folder))
    if versions is not None:
        document, lists = versions
        for key, kind in _LISTS.items():
            read = partial(_reporters, folder, document, key, kind, getattr(lists, key))
            reporters += _attempt(problems, read) or []
        problems += _unlisted(folder, lists)
    reporters += _attempt(problems, partial(_national, folder)) or []
    # Exclusions are checked against complete lists only, or a missing list would misreport them.
    groups = _attempt(problems, partial(_groups, folder, None if problems else reporters))
    if problems or groups is None:
        raise DataError(problems)
    return Registry(reporters={r.id: r for r in reporters}, groups=groups)


@cache
def default_registry() -> Registry:
    """The packaged registry, read once per process."""
    return load_registry()


def _attempt(problems: list[DataProblem], read: Callable[[], T]) -> T | None:
    """``read()``, or None with its problems added to ``problems``: every file is checked at once."""
    try:
        return read()
    except DataError as error:
        problems += error.problems
        return None


def _versions(folder: Traversable) -> tuple[YamlDocument, _Versions]:
    document = YamlDocument.read(folder.joinpath(VERSIONS_FILE))
    versions = document.validated(_Versions)
    problems = []
    for key in _LISTS:
        entries: tuple[_Version, ...] = getattr(versions, key)
        for i, entry in enumerate(entries):
            if not entry.file.startswith(f"{key}_"):
                problems.append(document.problem((key, i, "file"), f"not named {key}_<label>.csv"))
            if entry.file in (e.file for e in entries[:i]):
                problems.append(document.problem((key, i, "file"), "listed twice"))
            before = entries[i - 1].from_ if i else None
            if i and entry.from_ is None:
                problems.append(document.problem((key, i), "no `from`: when does this list come into force?"))
            elif before is not None and entry.from_ is not None and entry.from_ <= before:
                message = f"{entry.from_} is not after {before}, when {entries[i - 1].file} comes into force"
                problems.append(document.problem((key, i, "from"), message))
    if problems:
        raise DataError(problems)
    return document, versions


def _label(key: str, entry: _Version) -> str:
    """``2025`` for provinces_2025.csv."""
    return entry.file.removeprefix(f"{key}_").removesuffix(".csv")


def _codes(text: str) -> list[str]:
    """The codes of a ``merged_from`` field: ``02;08``."""
    return [code.strip() for code in text.split(";") if code.strip()]


def _day_before(day: date | None) -> date | None:
    return day - timedelta(days=1) if day is not None else None


def _units(table: CsvTable, kind: _Kind, problems: list[DataProblem]) -> dict[str, CsvRow]:
    """The table's rows by code, in file order; rows with a wrong code or no name are problems."""
    units: dict[str, CsvRow] = {}
    for row in table.rows:
        code = row.fields["code"]
        if not kind.code.fullmatch(code):
            problems.append(table.problem(row, "code", f"{code!r} is not {kind.code_text}"))
        elif code in units:
            problems.append(table.problem(row, "code", f"{code!r} is listed twice (line {units[code].line})"))
        elif not row.fields[kind.name_column]:
            problems.append(table.problem(row, kind.name_column, "empty"))
        else:
            units[code] = row
    return units


def _reporters(
    folder: Traversable, document: YamlDocument, key: str, kind: _Kind, entries: tuple[_Version, ...]
) -> list[Reporter]:
    """One kind's reporters from its reference lists, oldest first.

    A unit on consecutive lists is one reporter, in force from the first one's ``from`` to the day
    before the list without it comes into force. The last list it is on names its successor in the
    column ``successor_<label of the next list>`` (itself, for a unit that goes on), and every list
    but the first names in ``merged_from`` the units each of its own was formed from."""
    problems: list[DataProblem] = []
    tables: list[CsvTable] = []
    for i, entry in enumerate(entries):
        file = folder.joinpath(entry.file)
        if not file.is_file():
            problems.append(document.problem((key, i, "file"), f"no such file in {folder}"))
            continue
        required = ["code", kind.name_column]
        required += ["merged_from"] if i else []
        required += [f"successor_{_label(key, entries[i + 1])}"] if i + 1 < len(entries) else []
        try:
            tables.append(CsvTable.read(file, required))
        except DataError as error:
            problems += error.problems
    if problems:
        raise DataError(problems)
    units = [_units(table, kind, problems) for table in tables]
    first: dict[str, int] = {}
    for i, (table, rows) in enumerate(zip(tables, units, strict=True)):
        for code, row in rows.items():
            if first.setdefault(code, i) < i and code not in units[i - 1]:
                left = entries[first[code]].file
                message = f"{code!r} left after {left}: a unit that comes back needs a new code"
                problems.append(table.problem(row, "code", message))
            if i:
                problems += [
                    table.problem(row, "merged_from", f"{old!r} is not on {entries[i - 1].file}")
                    for old in _codes(row.fields["merged_from"])
                    if old not in units[i - 1]
                ]
            if i + 1 < len(entries):
                problems += _successor_problems(table, row, entries[i + 1], units[i + 1], key)
    if problems:
        raise DataError(problems)
    reporters: list[Reporter] = []
    # Listed by the last list each unit is on, as the lists list them.
    for i, rows in enumerate(units):
        later = entries[i + 1] if i + 1 < len(entries) else None
        for code, row in rows.items():
            if later is not None and code in units[i + 1]:
                continue
            merged = (units[j][code].fields["merged_from"] for j in range(max(first[code], 1), i + 1))
            reporters.append(
                Reporter(
                    id=f"{kind.kind}:{code}",
                    kind=kind.kind,
                    code=code,
                    name=row.fields[kind.name_column],
                    valid_from=entries[first[code]].from_,
                    valid_to=_day_before(later.from_) if later is not None else None,
                    successor=(
                        f"{kind.kind}:{row.fields[f'successor_{_label(key, later)}']}" if later else None
                    ),
                    merged_from=tuple(
                        dict.fromkeys(f"{kind.kind}:{old}" for text in merged for old in _codes(text))
                    ),
                    names=tuple(
                        (entries[j].from_, units[j][code].fields[kind.name_column])
                        for j in range(first[code], i + 1)
                    ),
                )
            )
    return reporters


def _successor_problems(
    table: CsvTable, row: CsvRow, later: _Version, next_units: dict[str, CsvRow], key: str
) -> list[DataProblem]:
    """What is wrong with the successor ``row`` names on the next list (none, mostly)."""
    column = f"successor_{_label(key, later)}"
    code, successor = row.fields["code"], row.fields[column]
    if not successor:
        return [table.problem(row, column, f"empty: name the unit of {later.file} that takes over")]
    if successor not in next_units:
        return [table.problem(row, column, f"{successor!r} is not on {later.file}")]
    if code in next_units and successor != code:
        return [table.problem(row, column, f"{code!r} goes on in {later.file}, so it succeeds itself")]
    if code not in _codes(next_units[successor].fields["merged_from"]):
        message = f"{successor!r} on {later.file} does not list {code!r} in merged_from"
        return [table.problem(row, column, message)]
    return []


def _unlisted(folder: Traversable, versions: _Versions) -> list[DataProblem]:
    """A CSV file versions.yaml does not name would be silently ignored: a problem instead."""
    listed = {entry.file for key in _LISTS for entry in getattr(versions, key)} | {NATIONAL_FILE}
    return [
        DataProblem(str(file), None, None, f"not named in {VERSIONS_FILE}, so never read")
        for file in sorted(folder.iterdir(), key=lambda file: file.name)
        # Kubernetes keeps a mounted ConfigMap's files in hidden folders (..data) beside their links.
        if file.name.endswith(".csv") and not file.name.startswith(".") and file.name not in listed
    ]


def _optional_date(table: CsvTable, row: CsvRow, column: str, problems: list[DataProblem]) -> date | None:
    text = row.fields[column]
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        problems.append(table.problem(row, column, f"{text!r} is not a date (YYYY-MM-DD)"))
        return None


def _national(folder: Traversable) -> list[Reporter]:
    """The national bodies of national.csv, each with its own validity dates."""
    table = CsvTable.read(
        folder.joinpath(NATIONAL_FILE), ("code", _NATIONAL.name_column, "valid_from", "valid_to", "successor")
    )
    problems: list[DataProblem] = []
    units = _units(table, _NATIONAL, problems)
    reporters = []
    for code, row in units.items():
        valid_from = _optional_date(table, row, "valid_from", problems)
        valid_to = _optional_date(table, row, "valid_to", problems)
        if valid_from is not None and valid_to is not None and valid_to < valid_from:
            problems.append(table.problem(row, "valid_to", f"{valid_to} is before valid_from ({valid_from})"))
        successor = row.fields["successor"]
        if successor and successor not in units:
            problems.append(table.problem(row, "successor", f"{successor!r} is not on {NATIONAL_FILE}"))
        reporters.append(
            Reporter(
                id=f"national:{code}",
                kind="national",
                code=code,
                name=row.fields[_NATIONAL.name_column],
                valid_from=valid_from,
                valid_to=valid_to,
                successor=f"national:{successor}" if successor else None,
            )
        )
    if problems:
        raise DataError(problems)
    return reporters


def _groups(folder: Traversable, reporters: Sequence[Reporter] | None) -> dict[str, Group]:
    """groups.yaml's groups; with ``reporters``, an excluded code none of them has is a problem."""
    document = YamlDocument.read(folder.joinpath(GROUPS_FILE))
    spec = document.validated(_Groups).groups
    unknown = [
        document.problem(("groups", name, "exclude", j), f"no {'/'.join(group.kinds)} has the code {code!r}")
        for name, group in spec.items()
        for j, code in enumerate(group.exclude)
        if reporters is not None and not any(r.code == code and r.kind in group.kinds for r in reporters)
    ]
    if unknown:
        raise DataError(unknown)
    return {name: Group(name=name, kinds=g.kinds, exclude=frozenset(g.exclude)) for name, g in spec.items()}
