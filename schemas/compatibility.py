"""Whether a JSON Schema may replace its released copy under the same topic version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.export import Direction

Schema = Mapping[str, Any]

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")
_EXACT = ("pattern", "format")


def breaking_changes(released: Schema, current: Schema, direction: Direction) -> list[str]:
    """What in ``current`` breaks someone who relies on ``released``, one line each; [] when none.

    ``output`` (what subscribers read): every value ``current`` allows must pass ``released``,
    except for properties added to an object ``released`` leaves open. ``input`` (what senders
    send): every value ``released`` allows must pass ``current``. In both, a property may not be
    removed and the ``$id`` may not change. The rules are docs/design/schema-evolution.md's.
    """
    problems: list[str] = []
    if released.get("$id") != current.get("$id"):
        problems.append(f"$id changed from {released.get('$id')!r} to {current.get('$id')!r}")
    old, new = _Side(released, released), _Side(current, current)
    narrow, wide = (new, old) if direction == "output" else (old, new)
    problems.extend(_removed_properties(old, new, "$"))
    # Output: the current schema may send what readers of the released one refuse. Input: the
    # current schema may refuse what senders of the released one send.
    lead = "readers would refuse" if direction == "output" else "senders would be refused"
    problems.extend(f"{lead}: {reason}" for reason in _within(narrow, wide, "$", direction))
    return list(dict.fromkeys(problems))


class _Side:
    """A schema node and the document its ``$ref`` pointers resolve in."""

    def __init__(self, node: Schema, root: Schema) -> None:
        self.root = root
        self.node = self._resolve(node)

    def _resolve(self, node: Schema) -> Schema:
        seen = 0
        while "$ref" in node:
            reference = str(node["$ref"])
            if not reference.startswith("#/"):
                raise ValueError(f"only local references are compared, not {reference}")
            target: Any = self.root
            for part in reference[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            extra = {key: value for key, value in node.items() if key != "$ref"}
            node = {**target, **extra}
            seen += 1
            if seen > 50:
                raise ValueError(f"reference loop at {reference}")
        return node

    def at(self, node: Schema) -> _Side:
        return _Side(node, self.root)

    def variants(self) -> list[_Side]:
        """The alternatives of an ``anyOf`` or ``oneOf``, else the node itself."""
        for keyword in ("anyOf", "oneOf"):
            if keyword in self.node:
                return [found for option in self.node[keyword] for found in self.at(option).variants()]
        return [self]

    def types(self) -> set[str] | None:
        """The JSON types the node allows; None for any."""
        if "type" in self.node:
            declared = self.node["type"]
            return {declared} if isinstance(declared, str) else set(declared)
        values = self.values()
        if values is not None:
            return {_json_type(value) for value in values}
        return None

    def values(self) -> list[Any] | None:
        """The only values the node allows (``const`` or ``enum``); None when not listed."""
        if "const" in self.node:
            return [self.node["const"]]
        if "enum" in self.node:
            return list(self.node["enum"])
        return None

    def properties(self) -> dict[str, Any]:
        return dict(self.node.get("properties", {}))

    def required(self) -> set[str]:
        return set(self.node.get("required", []))

    def closed(self) -> bool:
        return self.node.get("additionalProperties", True) is False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _types_within(narrow: set[str], wide: set[str]) -> bool:
    # An integer is a number: a field that was a number may become an integer, not the reverse.
    return all(kind in wide or (kind == "integer" and "number" in wide) for kind in narrow)


def _removed_properties(released: _Side, current: _Side, path: str) -> list[str]:
    """Properties of ``released`` that ``current`` lacks, at any depth both describe."""
    problems = []
    for old in released.variants():
        matching = [new for new in current.variants() if _same_shape(old, new)]
        for new in matching[:1]:
            for name, schema in old.properties().items():
                if name not in new.properties():
                    problems.append(f"{path}.{name}: removed")
                else:
                    problems.extend(
                        _removed_properties(old.at(schema), new.at(new.properties()[name]), f"{path}.{name}")
                    )
            if "items" in old.node and "items" in new.node:
                problems.extend(
                    _removed_properties(old.at(old.node["items"]), new.at(new.node["items"]), path)
                )
    return problems


def _same_shape(old: _Side, new: _Side) -> bool:
    """Whether two alternatives describe the same kind of value (for matching them up)."""
    if "title" in old.node and "title" in new.node:
        return bool(old.node["title"] == new.node["title"])
    old_types, new_types = old.types(), new.types()
    return old_types is not None and old_types == new_types


def _within(narrow: _Side, wide: _Side, path: str, direction: Direction) -> list[str]:
    """Why a value ``narrow`` allows may fail ``wide``; [] when every such value passes."""
    wide_options = wide.variants()
    problems: list[str] = []
    for option in narrow.variants():
        found: list[list[str]] = [
            _node_within(option, candidate, path, direction) for candidate in wide_options
        ]
        if all(found):
            fewest: list[str] = min(found, key=len)
            problems.extend(fewest)
    return problems


def _node_within(narrow: _Side, wide: _Side, path: str, direction: Direction) -> list[str]:
    problems: list[str] = []
    narrow_types, wide_types = narrow.types(), wide.types()
    if wide_types is not None and (narrow_types is None or not _types_within(narrow_types, wide_types)):
        shown = "any type" if narrow_types is None else "/".join(sorted(narrow_types))
        return [f"{path}: {shown} not within {'/'.join(sorted(wide_types))}"]
    narrow_values, wide_values = narrow.values(), wide.values()
    if wide_values is not None:
        outside = [v for v in narrow_values or [] if v not in wide_values]
        if narrow_values is None or outside:
            shown = "any value" if narrow_values is None else ", ".join(map(repr, outside))
            problems.append(f"{path}: {shown} not within {wide_values!r}")
    problems.extend(_bounds(narrow.node, wide.node, path))
    if "items" in wide.node:
        items = narrow.at(narrow.node["items"]) if "items" in narrow.node else narrow.at({})
        problems.extend(_within(items, wide.at(wide.node["items"]), f"{path}[]", direction))
    problems.extend(_objects(narrow, wide, path, direction))
    return problems


def _bounds(narrow: Schema, wide: Schema, path: str) -> list[str]:
    problems = []
    for keyword in _LOWER_BOUNDS:
        if keyword in wide and (keyword not in narrow or narrow[keyword] < wide[keyword]):
            problems.append(f"{path}: {keyword} {narrow.get(keyword)} not within {wide[keyword]}")
    for keyword in _UPPER_BOUNDS:
        if keyword in wide and (keyword not in narrow or narrow[keyword] > wide[keyword]):
            problems.append(f"{path}: {keyword} {narrow.get(keyword)} not within {wide[keyword]}")
    for keyword in _EXACT:
        if keyword in wide and narrow.get(keyword) != wide[keyword]:
            problems.append(f"{path}: {keyword} {narrow.get(keyword)!r} not {wide[keyword]!r}")
    return problems


def _objects(narrow: _Side, wide: _Side, path: str, direction: Direction) -> list[str]:
    # Output: a field readers relied on may be missing. Input: senders must now send a field.
    change = "no longer always present" if direction == "output" else "now required"
    problems = [f"{path}.{name}: {change}" for name in sorted(wide.required() - narrow.required())]
    if wide.closed() and not narrow.closed():
        problems.append(f"{path}: open to undeclared properties where the object is closed")
    wide_properties = wide.properties()
    for name, schema in sorted(narrow.properties().items()):
        if name in wide_properties:
            problems.extend(
                _within(narrow.at(schema), wide.at(wide_properties[name]), f"{path}.{name}", direction)
            )
        elif wide.closed():
            problems.append(f"{path}.{name}: not allowed where the object is closed")
    return problems
