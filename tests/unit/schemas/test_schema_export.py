"""The committed JSON Schemas are exactly what the pydantic models export (no stale contract)."""

from __future__ import annotations

from pathlib import Path

from schemas.export import schema_documents

JSON_DIR = Path(__file__).resolve().parents[3] / "schemas" / "json"


def test_committed_json_schemas_match_the_models() -> None:
    documents = schema_documents()
    assert sorted(p.name for p in JSON_DIR.glob("*.json")) == sorted(documents)
    for name, text in documents.items():
        assert (JSON_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run dxpulse export-schemas"
        )
