"""The committed contract is exactly what the code exports, and the schemas describe real events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from dxpulse.kafka.contract import contract_documents
from dxpulse.kafka.dead_letters import Refused, letter_of
from schemas import AlertEvent, DeadLetter, Report, Rollup
from schemas.export import DIRECTIONS, EXPORTED, JSON_SCHEMA_DIALECT, file_name, json_schema
from tests.unit.conftest import feed, flag, make_report, ratio

JSON_DIR = Path(__file__).resolve().parents[3] / "schemas" / "json"


def test_committed_contract_matches_the_code() -> None:
    documents = contract_documents()
    assert sorted(p.name for p in JSON_DIR.glob("*.json")) == sorted(documents)
    for name, text in documents.items():
        assert (JSON_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run dxpulse export-schemas"
        )


def test_every_schema_has_an_id_and_a_dialect_and_is_valid_draft_7() -> None:
    ids = set()
    for name in EXPORTED:
        schema = json.loads((JSON_DIR / file_name(name)).read_text(encoding="utf-8"))
        assert schema["$schema"] == JSON_SCHEMA_DIALECT
        assert schema["$id"] == f"urn:dxpulse:schema:{name}:v1"
        jsonschema.Draft7Validator.check_schema(schema)
        ids.add(schema["$id"])
    assert len(ids) == len(EXPORTED)


def _events() -> dict[str, list[BaseModel]]:
    reports = [make_report("province:79", flag(True)), make_report("ministry:MIC", flag(False))]
    _, published = feed(reports, "emc_connection", "2024-H1")
    _, ratios = feed([make_report("province:01", ratio(3, 4))], "online_records_rate", "2024-H1")
    alert = AlertEvent(
        fingerprint="0123456789abcdef",
        transition_id="0123456789abcdef:1:firing",
        rule="below_target",
        indicator="emc_connection",
        period="2024-H1",
        scope="national",
        status="firing",
        severity="critical",
        summary="below target",
        value=0.5,
        target=1.0,
        reporters=["province:79"],
        starts_at=datetime(2024, 7, 1, tzinfo=UTC),
        ends_at=None,
        changed_at=datetime(2024, 7, 1, tzinfo=UTC),
    )
    refused = Refused(b"k", b"\xff not json", "dxpulse.reports.v1", 2, 41)
    letter = letter_of(refused, "invalid-json", "Expecting value", datetime(2024, 7, 1, tzinfo=UTC))
    return {
        "report": list[BaseModel](reports),
        "rollup": [r for batch in published + ratios for r in batch],
        "alert": [alert],
        "dead-letter": [letter],
    }


def _validator(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json_schema(name), format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_real_events_pass_their_schema_and_a_changed_one_fails(name: str) -> None:
    events = _events()[name]
    assert events
    for event in events:
        body = json.loads(event.model_dump_json())
        assert list(_validator(name).iter_errors(body)) == []
        required = json_schema(name)["required"][-1]
        assert list(_validator(name).iter_errors({k: v for k, v in body.items() if k != required})) != []


OUTPUTS: dict[str, type[BaseModel]] = {"rollup": Rollup, "alert": AlertEvent, "dead-letter": DeadLetter}


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_readers_of_an_output_ignore_a_field_added_later(name: str) -> None:
    assert DIRECTIONS[name] == "output"
    (event, *_) = _events()[name]
    body: dict[str, Any] = {**json.loads(event.model_dump_json()), "added_later": {"any": ["shape"]}}
    assert list(_validator(name).iter_errors(body)) == []
    assert OUTPUTS[name].model_validate_json(json.dumps(body)) == event


def test_a_report_with_an_unknown_field_is_refused_by_schema_and_model() -> None:
    assert DIRECTIONS["report"] == "input"
    body = {**json.loads(_events()["report"][0].model_dump_json()), "note": "x"}
    assert list(_validator("report").iter_errors(body)) != []
    with pytest.raises(ValidationError):
        Report.model_validate_json(json.dumps(body))
