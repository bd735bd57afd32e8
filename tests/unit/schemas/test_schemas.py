"""Event schemas: what a Report accepts and refuses, and the discriminated value union."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import (
    SCHEMA_VERSION,
    CatalogValue,
    CountValue,
    FlagValue,
    RatioValue,
    Report,
    ReportValue,
)
from schemas.events import report_key, rollup_key

VALUES: TypeAdapter[ReportValue] = TypeAdapter(ReportValue)


def _raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "schema_version": 1,
        "event_id": str(uuid4()),
        "reporter": "province:79",
        "indicator": "emc_connection",
        "period": "2024-H1",
        "observed_at": "2024-06-30T12:00:00+07:00",
        "value": {"kind": "flag", "value": True},
    }
    raw.update(changes)
    return raw


def test_valid_report_parses_from_json() -> None:
    report = Report.model_validate_json(json.dumps(_raw()))
    assert report.value == FlagValue(value=True)
    assert report.observed_at.utcoffset() == timedelta(hours=7)
    assert report.schema_version == SCHEMA_VERSION == 1


def test_report_round_trips_through_json() -> None:
    report = Report.model_validate(_raw(value={"kind": "ratio", "numerator": 3, "denominator": 4}))
    assert Report.model_validate_json(report.model_dump_json()) == report


def test_schema_version_defaults_to_1() -> None:
    raw = _raw()
    del raw["schema_version"]
    assert Report.model_validate(raw).schema_version == 1


@pytest.mark.parametrize("version", [0, 2, "2"])
def test_other_schema_version_is_refused(version: object) -> None:
    with pytest.raises(ValidationError, match="schema_version"):
        Report.model_validate(_raw(schema_version=version))


@pytest.mark.parametrize(
    "value",
    [
        {"kind": "count", "value": -1},
        {"kind": "ratio", "numerator": -1, "denominator": 10},
        {"kind": "ratio", "numerator": 1, "denominator": -10},
        {"kind": "count", "value": -0.001},
    ],
)
def test_negative_figures_are_refused(value: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Report.model_validate(_raw(value=value))


@pytest.mark.parametrize(
    "value",
    [
        {"kind": "count", "value": float("inf")},
        {"kind": "ratio", "numerator": float("inf"), "denominator": float("inf")},
    ],
)
def test_infinite_figures_are_refused(value: dict[str, Any]) -> None:
    # An infinite count would poison the national sum (and serialise as null in the rollup).
    with pytest.raises(ValidationError):
        Report.model_validate(_raw(value=value))


def test_nan_is_refused() -> None:
    with pytest.raises(ValidationError):
        CountValue(value=float("nan"))


def test_unknown_field_on_report_is_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Report.model_validate(_raw(comment="hello"))


def test_unknown_field_on_value_is_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Report.model_validate(_raw(value={"kind": "flag", "value": True, "weight": 2}))


@pytest.mark.parametrize(
    "reporter",
    [
        "province",
        "province:",
        "prov:01",
        "Province:01",
        "region:01",
        "province:01 ",
        "province:01\n",
        "province:a b",
        "province:Hà",
        "ministry:" + "X" * 33,
        "province:01:02",
    ],
)
def test_bad_reporter_id_is_refused(reporter: str) -> None:
    with pytest.raises(ValidationError, match="reporter"):
        Report.model_validate(_raw(reporter=reporter))


@pytest.mark.parametrize(
    "reporter", ["province:01", "ministry:MOLISA", "national:MPS", "ministry:" + "X" * 32]
)
def test_good_reporter_id_is_accepted(reporter: str) -> None:
    assert Report.model_validate(_raw(reporter=reporter)).reporter == reporter


@pytest.mark.parametrize("observed_at", ["2024-06-30T12:00:00", datetime(2024, 6, 30, 12)])
def test_naive_observation_time_is_refused(observed_at: object) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Report.model_validate(_raw(observed_at=observed_at))


def test_aware_datetime_object_is_accepted() -> None:
    aware = datetime(2024, 6, 30, 12, tzinfo=timezone(timedelta(hours=-3)))
    assert Report.model_validate(_raw(observed_at=aware)).observed_at == aware


@pytest.mark.parametrize("event_id", ["not-a-uuid", "", 42])
def test_bad_event_id_is_refused(event_id: object) -> None:
    with pytest.raises(ValidationError, match="event_id"):
        Report.model_validate(_raw(event_id=event_id))


@pytest.mark.parametrize(
    ("field", "value"), [("indicator", ""), ("period", "24"), ("period", "2024-H1-xxxx")]
)
def test_empty_or_overlong_text_fields_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Report.model_validate(_raw(**{field: value}))


def test_report_is_immutable() -> None:
    report = Report.model_validate(_raw())
    with pytest.raises(ValidationError):
        report.reporter = "province:01"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"kind": "flag", "value": false}', FlagValue(value=False)),
        (
            '{"kind": "ratio", "numerator": 12345, "denominator": 30000}',
            RatioValue(numerator=12345, denominator=30000),
        ),
        ('{"kind": "count", "value": 50350}', CountValue(value=50350)),
        ('{"kind": "catalog", "done": ["eps-01", "eps-02"]}', CatalogValue(done=["eps-01", "eps-02"])),
        ('{"kind": "catalog", "done": []}', CatalogValue(done=[])),
    ],
)
def test_value_union_parses_each_kind_from_json(text: str, expected: ReportValue) -> None:
    parsed = VALUES.validate_json(text)
    assert type(parsed) is type(expected)
    assert parsed == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"kind": "average", "value": 1}',
        '{"value": true}',
        '{"kind": "flag"}',
        '{"kind": "ratio", "numerator": 1}',
        '{"kind": "count", "value": "many"}',
        '{"kind": "catalog", "done": "eps-01"}',
    ],
)
def test_value_union_refuses_unknown_kind_or_missing_fields(text: str) -> None:
    with pytest.raises(ValidationError):
        VALUES.validate_json(text)


def test_value_kind_decides_the_model_even_when_fields_would_fit_another() -> None:
    # {"value": 1} fits both flag and count; the discriminator picks count.
    assert isinstance(VALUES.validate_json('{"kind": "count", "value": 1}'), CountValue)
    assert isinstance(VALUES.validate_json('{"kind": "flag", "value": true}'), FlagValue)
    with pytest.raises(ValidationError):  # a flag is a JSON boolean, never a number read as one
        VALUES.validate_json('{"kind": "flag", "value": 1}')


def test_message_keys() -> None:
    assert report_key("emc_connection", "2024-H1") == "emc_connection|2024-H1"
    assert rollup_key("emc_connection", "2024-H1", "national") == "emc_connection|2024-H1|national"
