"""Reading reports from CSV or JSON-lines files for ``dxpulse send``: pure text in, JSON objects out."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

FileFormat = Literal["csv", "jsonl"]

CSV_COLUMNS = (
    "event_id",
    "reporter",
    "indicator",
    "period",
    "observed_at",
    "kind",
    "value",
    "numerator",
    "denominator",
    "done",
)
"""Columns of a report CSV; event_id may be left empty, and each kind uses only its own value columns."""
_NAMESPACE = uuid.UUID("0c4f7a0e-61b5-4d0a-9a55-7f3ef2a8c1d4")
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


@dataclass(frozen=True)
class FileItem:
    """One report read from a file: its line number and JSON object, or why it could not be read."""

    line: int
    report: dict[str, Any] | None
    error: str | None = None


def format_of(name: str) -> FileFormat:
    """The format a file name implies: .csv is CSV, anything else JSON lines."""
    return "csv" if name.lower().endswith(".csv") else "jsonl"


def derived_event_id(reporter: str, indicator: str, period: str, observed_at: str) -> str:
    """An event id from the report's identity, so sending the same file twice is idempotent."""
    return str(uuid.uuid5(_NAMESPACE, f"{reporter}|{indicator}|{period}|{observed_at}"))


def _number(text: str) -> Any:
    """A number where the text is one; otherwise the text, for the API to refuse with a reason."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _value(row: dict[str, str]) -> dict[str, Any]:
    kind = row.get("kind", "").strip()
    if kind == "flag":
        raw = row.get("value", "").strip()
        flag: Any = True if raw.lower() in _TRUE else False if raw.lower() in _FALSE else raw
        return {"kind": kind, "value": flag}
    if kind == "ratio":
        return {
            "kind": kind,
            "numerator": _number(row.get("numerator", "").strip()),
            "denominator": _number(row.get("denominator", "").strip()),
        }
    if kind == "count":
        return {"kind": kind, "value": _number(row.get("value", "").strip())}
    if kind == "catalog":
        return {"kind": kind, "done": [i.strip() for i in row.get("done", "").split(";") if i.strip()]}
    return {"kind": kind}


def read_csv(text: str) -> list[FileItem]:
    """Reports from CSV text with a header row naming (some of) CSV_COLUMNS."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"reporter", "indicator", "period", "observed_at", "kind"} - set(reader.fieldnames or ())
    if missing:
        return [FileItem(1, None, f"the header lacks column(s) {', '.join(sorted(missing))}")]
    items: list[FileItem] = []
    for row in reader:
        cells = {k: (v or "") for k, v in row.items() if k is not None}
        fields = {k: cells.get(k, "").strip() for k in ("reporter", "indicator", "period", "observed_at")}
        event_id = cells.get("event_id", "").strip() or derived_event_id(*fields.values())
        items.append(FileItem(reader.line_num, {"event_id": event_id, **fields, "value": _value(cells)}))
    return items


def read_jsonl(text: str) -> list[FileItem]:
    """Reports from JSON lines: one report object per line; blank lines are skipped."""
    items: list[FileItem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as error:
            items.append(FileItem(number, None, f"malformed-json: {error}"))
            continue
        if not isinstance(value, dict):
            items.append(FileItem(number, None, "invalid-report: a line must be one JSON object"))
            continue
        items.append(FileItem(number, value))
    return items


def read_reports(text: str, file_format: FileFormat) -> list[FileItem]:
    return read_csv(text) if file_format == "csv" else read_jsonl(text)
