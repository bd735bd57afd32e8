"""Export every event model as JSON Schema, for producers and subscribers in other languages."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from schemas.events import SCHEMA_VERSION, AlertEvent, DeadLetter, Report, Rollup

EXPORTED: dict[str, type[BaseModel]] = {
    "report": Report,
    "rollup": Rollup,
    "alert": AlertEvent,
    "dead-letter": DeadLetter,
}

Direction = Literal["input", "output"]
"""``input``: what dxpulse accepts from senders (reports); ``output``: what subscribers read."""

DIRECTIONS: dict[str, Direction] = {
    "report": "input",
    "rollup": "output",
    "alert": "output",
    "dead-letter": "output",
}
"""Which way each event flows, and so which changes break it (docs/design/schema-evolution.md)."""

JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
"""The dialect every exported schema declares: the JSON Schema version AsyncAPI 3 tools must read."""


def file_name(name: str) -> str:
    """The file an event's schema is written to, e.g. ``rollup.v1.schema.json``."""
    return f"{name}.v{SCHEMA_VERSION}.schema.json"


def schema_id(name: str) -> str:
    """The schema's ``$id``: stable for one version, whatever URL or folder serves the file."""
    return f"urn:dxpulse:schema:{name}:v{SCHEMA_VERSION}"


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of the event ``name`` (a key of ``EXPORTED``), with its ``$id`` and dialect."""
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_id(name), **EXPORTED[name].model_json_schema()}


def schema_documents() -> dict[str, str]:
    """File name → JSON Schema text, exactly as committed under schemas/json/."""
    return {
        file_name(name): json.dumps(json_schema(name), indent=2, sort_keys=True) + "\n" for name in EXPORTED
    }
