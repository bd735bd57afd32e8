"""Export every event model as JSON Schema, for producers and subscribers in other languages."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.events import AlertEvent, DeadLetter, Report, Rollup

EXPORTED: dict[str, type[BaseModel]] = {
    "report": Report,
    "rollup": Rollup,
    "alert": AlertEvent,
    "dead-letter": DeadLetter,
}


def schema_documents() -> dict[str, str]:
    """File name → JSON Schema text, exactly as committed under schemas/json/."""
    return {
        f"{name}.v1.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for name, model in EXPORTED.items()
    }


def export(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_documents().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
