"""Business data files read with their line numbers, so that a wrong one is refused naming where."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from importlib.abc import Traversable
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

Location = tuple[str | int, ...]
"""Where a value sits in a YAML document, as pydantic names it: ``("indicators", 3, "target")``."""


@dataclass(frozen=True)
class DataProblem:
    """One thing wrong in a business data file: the file, the line and field where it is, and what."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file} line {self.line}"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class DataError(ValueError):
    """Business data files that cannot be used: one line per problem."""

    def __init__(self, problems: Sequence[DataProblem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = tuple(problems)


def field_path(location: Location) -> str:
    """``("indicators", 3, "target", "value")`` as ``indicators[3].target.value``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def read_text(file: Traversable) -> str:
    """The file's text; a file that cannot be read, or is not UTF-8, is a ``DataError``."""
    try:
        # utf-8-sig: spreadsheet programs start the CSV files they save with a byte order mark.
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        message = f"not UTF-8 text (byte {error.start}: {error.reason})"
    except OSError as error:
        message = f"cannot be read: {error.strerror or error}"
    raise DataError([DataProblem(str(file), None, None, message)])


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, with a date that does not exist refused at its line, not as a bare
    ValueError from the depths of the constructor."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[arg-type]
        except ValueError as error:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a date: {error}", node.start_mark
            ) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


@dataclass(frozen=True)
class YamlDocument:
    """A YAML file's data beside its nodes, which know the line of every key and item."""

    source: str
    root: yaml.Node | None
    data: Any

    @classmethod
    def read(cls, file: Traversable) -> YamlDocument:
        """The document in ``file``; a ``DataError`` at the line of a syntax error or a key given twice."""
        source = str(file)
        loader = _Loader(read_text(file))
        try:
            root = loader.get_single_node()
            twice = [DataProblem(source, line, key, "given twice") for key, line in _keys_twice(root)]
            if twice:
                raise DataError(twice)
            return cls(source, root, loader.construct_document(root) if root is not None else None)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            message = ", ".join(part for part in (error.context, error.problem) if part) or str(error)
            raise DataError([DataProblem(source, mark.line + 1 if mark else None, None, message)]) from None
        except yaml.YAMLError as error:  # unreadable characters: no node to place them
            raise DataError([DataProblem(source, None, None, str(error))]) from None
        finally:
            loader.dispose()

    def line(self, location: Location) -> int | None:
        """The line of the value at ``location``: of its key in a mapping, of the item in a list.

        As far as the document goes: a field that is missing is placed at its parent's line."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line
        for part in location:
            found = _child(node, part)
            if found is None:
                break
            line, node = found
        return line + 1

    def problem(self, location: Location, message: str) -> DataProblem:
        return DataProblem(self.source, self.line(location), field_path(location) or None, message)

    def validated(self, model: type[M]) -> M:
        """The document as ``model``; pydantic's errors as a ``DataError``, each placed at its line."""
        try:
            return model.model_validate(self.data)
        except ValidationError as error:
            raise DataError([self.problem(tuple(e["loc"]), _message(e)) for e in error.errors()]) from None


def _child(node: yaml.Node, part: str | int) -> tuple[int, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key.start_mark.line, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item.start_mark.line, item
    return None


def _keys_twice(node: yaml.Node | None, path: Location = ()) -> Iterator[tuple[str, int]]:
    """(field, line) of every key given a second time in its mapping: YAML keeps the last silently."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                yield field_path((*path, name)), key.start_mark.line + 1
            seen.add(name)
            yield from _keys_twice(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _keys_twice(item, (*path, index))


def _message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] != "missing" and isinstance(value, str | int | float | date):
        message += f" (got {value!r})" if not isinstance(value, date) else f" (got {value.isoformat()})"
    return message


@dataclass(frozen=True)
class CsvRow:
    """One line of a CSV file: its line number and its fields by column, stripped of spaces."""

    line: int
    fields: dict[str, str]


@dataclass(frozen=True)
class CsvTable:
    """A CSV file's rows under its header."""

    source: str
    columns: tuple[str, ...]
    rows: tuple[CsvRow, ...]

    def problem(self, row: CsvRow, column: str, message: str) -> DataProblem:
        return DataProblem(self.source, row.line, f"column {column}", message)

    @classmethod
    def read(cls, file: Traversable, required: Sequence[str]) -> CsvTable:
        """The table in ``file``; a ``DataError`` when a required column is missing or a line does
        not have as many fields as the header."""
        source = str(file)
        reader = csv.reader(io.StringIO(read_text(file), newline=""))
        problems: list[DataProblem] = []
        rows: list[CsvRow] = []
        try:
            columns = tuple(name.strip() for name in next(reader, []))
            problems += [
                DataProblem(source, 1, f"column {name}", "missing from the header")
                for name in required
                if name not in columns
            ]
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue  # a blank line
                if len(fields) != len(columns):
                    message = f"{len(fields)} fields where the header has {len(columns)} columns"
                    problems.append(DataProblem(source, reader.line_num, None, message))
                    continue
                stripped = (field.strip() for field in fields)
                rows.append(CsvRow(reader.line_num, dict(zip(columns, stripped, strict=True))))
        except csv.Error as error:
            problems.append(DataProblem(source, reader.line_num, None, str(error)))
        if problems:
            raise DataError(problems)
        return cls(source, columns, tuple(rows))
