"""Every schema is compatible with its released copy, and the rules catch each kind of breaking change."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.compatibility import breaking_changes
from schemas.export import DIRECTIONS, EXPORTED, Direction, file_name, json_schema

RELEASED = Path(__file__).resolve().parents[3] / "schemas" / "released"

Change = Callable[[dict[str, Any]], None]


def _released() -> list[Path]:
    return sorted(RELEASED.glob("v*/*.schema.json"))


def test_every_event_has_a_released_copy() -> None:
    released = {path.name for path in _released()}
    assert {file_name(name) for name in EXPORTED} <= released


@pytest.mark.parametrize("path", _released(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_each_schema_is_compatible_with_its_released_copy(path: Path) -> None:
    name = path.name.split(".")[0]
    assert file_name(name) == path.name, f"{path} has no current schema: a released topic version stays"
    released = json.loads(path.read_text(encoding="utf-8"))
    assert breaking_changes(released, json_schema(name), DIRECTIONS[name]) == []


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "properties" in node:
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


@pytest.mark.parametrize("name", [name for name, way in DIRECTIONS.items() if way == "output"])
def test_every_object_of_an_output_is_open_to_fields_added_later(name: str) -> None:
    objects = list(_objects(json_schema(name)))
    assert objects
    assert [o["title"] for o in objects if o.get("additionalProperties", True) is not True] == []


SCHEMAS = {name: json_schema(name) for name in EXPORTED}


def _schema(name: str) -> dict[str, Any]:
    return copy.deepcopy(SCHEMAS[name])


def _changed(name: str, change: Change) -> dict[str, Any]:
    schema = _schema(name)
    change(schema)
    return schema


def _set(path: str, value: Any) -> Change:
    def change(schema: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = schema
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _remove(path: str) -> Change:
    def change(schema: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = schema
        for part in parents:
            node = node[part]
        if isinstance(node, list):
            node.remove(last)
        else:
            del node[last]

    return change


def _require(field: str) -> Change:
    def change(schema: dict[str, Any]) -> None:
        schema["required"].append(field)

    return change


def _both(*changes: Change) -> Change:
    def change(schema: dict[str, Any]) -> None:
        for one in changes:
            one(schema)

    return change


BREAKING: list[tuple[str, str, Change, str]] = [
    ("rollup", "output", _remove("properties/revision"), "$.revision: removed"),
    ("rollup", "output", _remove("required/revision"), "$.revision: no longer always present"),
    ("rollup", "output", _set("properties/value", {"type": "string"}), "$.value: string not within"),
    ("rollup", "output", _set("properties/numerator", {"type": ["number", "null"]}), "$.numerator: null"),
    (
        "rollup",
        "output",
        _set("properties/kind/enum", ["flag", "ratio", "count", "catalog", "text"]),
        "'text'",
    ),
    ("rollup", "output", _set("properties/lagging_count/minimum", -1), "minimum -1 not within 0"),
    ("rollup", "output", _set("$id", "urn:dxpulse:schema:rollup:v2"), "$id changed"),
    ("alert", "output", _set("properties/rule/enum", ["below_target", "on_fire"]), "'on_fire'"),
    ("dead-letter", "output", _remove("properties/original_sha256"), "original_sha256: removed"),
    (
        "report",
        "input",
        _both(_set("properties/note", {"type": "string"}), _require("note")),
        "$.note: now required",
    ),
    ("report", "input", _set("properties/period/pattern", "^[0-9]{4}$"), "$.period: pattern"),
    ("report", "input", _set("properties/indicator/maxLength", 32), "maxLength 64 not within 32"),
    ("report", "input", _set("$defs/CountValue/properties/value/maximum", 10**9), "$.value.value: maximum"),
    ("report", "input", _set("$defs/RatioValue/properties/numerator/type", "integer"), "number not within"),
    ("report", "input", _remove("$defs/CatalogValue/properties/done"), "$.value.done: removed"),
    ("report", "input", _set("properties/value/oneOf", [{"$ref": "#/$defs/FlagValue"}]), "'catalog'"),
]


@pytest.mark.parametrize(("name", "direction", "change", "said"), BREAKING)
def test_a_breaking_change_is_caught(name: str, direction: Direction, change: Change, said: str) -> None:
    released = _schema(name)
    current = _changed(name, change)
    problems = breaking_changes(released, current, direction)
    assert problems, "a breaking change passed"
    assert any(said in problem for problem in problems), problems


COMPATIBLE: list[tuple[str, str, Change]] = [
    ("rollup", "output", _set("properties/added_later", {"type": "string"})),
    (
        "rollup",
        "output",
        _both(_set("properties/added_later", {"type": "integer"}), _require("added_later")),
    ),
    ("rollup", "output", _set("properties/value", {"type": "number"})),
    ("rollup", "output", _set("properties/kind/enum", ["flag", "ratio"])),
    ("rollup", "output", _set("properties/reporters_reported/minimum", 0)),
    ("rollup", "output", _set("properties/revision/description", "Reworded.")),
    ("alert", "output", _set("properties/fingerprint/pattern", "^[0-9a-f]{16}$")),
    ("report", "input", _set("properties/note", {"type": "string"})),
    ("report", "input", _set("properties/indicator/maxLength", 128)),
    ("report", "input", _set("$defs/CountValue/properties/value/maximum", 10**16)),
    ("report", "input", _set("properties/period/description", "Reworded.")),
]


@pytest.mark.parametrize(("name", "direction", "change"), COMPATIBLE)
def test_a_compatible_change_passes(name: str, direction: Direction, change: Change) -> None:
    assert breaking_changes(_schema(name), _changed(name, change), direction) == []


def test_a_new_required_report_field_is_named() -> None:
    current = _changed("report", _both(_set("properties/note", {"type": "string"}), _require("note")))
    assert "senders would be refused: $.note: now required" in breaking_changes(
        _schema("report"), current, "input"
    )


def test_an_output_field_added_to_a_closed_object_is_caught() -> None:
    released = _changed("rollup", _set("additionalProperties", False))
    current = _changed(
        "rollup", _both(_set("additionalProperties", False), _set("properties/extra", {"type": "string"}))
    )
    assert breaking_changes(released, current, "output") == [
        "readers would refuse: $.extra: not allowed where the object is closed"
    ]


FIELD_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20)
TYPES = st.sampled_from(["string", "number", "integer", "boolean", "array", "object"])


@given(name=st.sampled_from(sorted(EXPORTED)), field=FIELD_NAMES, kind=TYPES)
def test_adding_an_optional_field_never_breaks(name: str, field: str, kind: str) -> None:
    schema = _schema(name)
    if field in schema["properties"]:
        return
    current = _changed(name, _set(f"properties/{field}", {"type": kind}))
    assert breaking_changes(schema, current, DIRECTIONS[name]) == []


@given(name=st.sampled_from(sorted(EXPORTED)), data=st.data())
def test_removing_any_field_always_breaks(name: str, data: st.DataObject) -> None:
    schema = _schema(name)
    field = data.draw(st.sampled_from(sorted(schema["properties"])))
    current = _changed(
        name,
        _both(
            _remove(f"properties/{field}"),
            lambda s: s["required"].remove(field) if field in s["required"] else None,
        ),
    )
    assert f"$.{field}: removed" in breaking_changes(schema, current, DIRECTIONS[name])
