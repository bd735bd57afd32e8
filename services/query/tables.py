"""CSV answers: JSON rows flattened to columns (``rollup.value``), lists joined with semicolons."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

LIST_SEPARATOR = ";"


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """One JSON object as CSV cells: nested objects become dotted columns, lists of plain values one
    cell joined by ``;``, lists of objects one cell of JSON; null an empty cell."""
    cells: dict[str, str] = {}
    for key, value in row.items():
        column = f"{prefix}{key}"
        if isinstance(value, Mapping):
            cells.update(flatten(value, f"{column}."))
        else:
            cells[column] = _cell(value)
    return cells


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        if all(not isinstance(item, Mapping | list | tuple) for item in value):
            return LIST_SEPARATOR.join(_cell(item) for item in value)
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def csv_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """The rows (JSON-ready objects) as CSV with a header line; columns in the order first seen."""
    flat = [flatten(row) for row in rows]
    columns = list(dict.fromkeys(column for row in flat for column in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue()
