"""Both APIs' OpenAPI documents give an example of every request body and refusal, valid for its schema."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from dxpulse.business_data import read_business_data
from dxpulse.domain.validation import Accepted, parse_report, validate_report
from dxpulse.http.problem_types import PROBLEM_BASE, PROBLEM_TYPES
from schemas import Report
from services.ingest.api.openapi import REPORT_EXAMPLES
from services.ingest.app import create_app as create_ingest
from services.query.app import create_app as create_query
from services.query.settings import QuerySettings
from tests.unit.ingest.conftest import offline_settings

Example = tuple[str, dict[str, Any], Any]
"""(where, schema, value) of one example of a document."""


def _documents() -> dict[str, dict[str, Any]]:
    return {
        "ingest": create_ingest(offline_settings()).openapi(),
        "query": create_query(QuerySettings()).openapi(),
    }


def _bodies(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, status or "request", media type object) of every request body and every answer."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                yield f"{where} request {media_type}", "request", media
            for status, response in operation.get("responses", {}).items():
                # A refusal must say what its body is; a 2xx may have none.
                content = response.get("content") or ({"(no content)": {}} if status[0] in "45" else {})
                for media_type, media in content.items():
                    yield f"{where} {status} {media_type}", status, media


def _examples(media: dict[str, Any]) -> list[Any]:
    named = [example["value"] for example in media.get("examples", {}).values()]
    return named + ([media["example"]] if "example" in media else [])


def missing_examples(document: dict[str, Any]) -> list[str]:
    """Where a request body or a refusal has no example (a 2xx may have none)."""
    needed = (body for body in _bodies(document) if body[1] == "request" or body[1][0] in "45")
    return [where for where, _, media in needed if not _examples(media)]


def invalid_examples(document: dict[str, Any]) -> list[str]:
    """Where an example does not match its schema, or a problem example its response's status."""
    found: list[str] = []
    for where, status, media in _bodies(document):
        # The schema's references point into the document's components.
        validator = Draft202012Validator({**media.get("schema", {}), "components": document["components"]})
        for value in _examples(media):
            errors = [error.message for error in validator.iter_errors(value)]
            if errors:
                found.append(f"{where}: {errors[0]}")
            if where.endswith("problem+json"):
                slug = str(value.get("type", "")).removeprefix(PROBLEM_BASE)
                if slug not in PROBLEM_TYPES or value.get("status") != int(status):
                    found.append(f"{where}: {value.get('type')} with status {value.get('status')}")
    return found


@pytest.mark.parametrize("api", ["ingest", "query"])
def test_every_request_body_and_refusal_has_an_example(api: str) -> None:
    document = _documents()[api]
    assert missing_examples(document) == []
    assert any(status == "request" for _, status, _ in _bodies(document)) == (api == "ingest")


@pytest.mark.parametrize("api", ["ingest", "query"])
def test_every_example_matches_its_schema_and_status(api: str) -> None:
    assert invalid_examples(_documents()[api]) == []


def test_the_checks_catch_a_missing_or_a_wrong_example() -> None:
    document = _documents()["ingest"]
    broken = copy.deepcopy(document)
    reports = broken["paths"]["/v1/reports"]["post"]
    reports["requestBody"]["content"]["application/json"].pop("examples")
    assert missing_examples(broken) == ["POST /v1/reports request application/json"]
    wrong = copy.deepcopy(document)
    body = wrong["paths"]["/v1/reports"]["post"]["requestBody"]["content"]["application/json"]
    body["examples"]["ratio"]["value"]["value"]["numerator"] = "12"
    problems = wrong["paths"]["/v1/reports"]["post"]["responses"]["429"]["content"][
        "application/problem+json"
    ]
    problems["examples"]["rate-limited"]["value"]["status"] = 503
    assert [line.split(":")[0] for line in invalid_examples(wrong)] == [
        "POST /v1/reports request application/json",
        "POST /v1/reports 429 application/problem+json",
    ]


@pytest.mark.parametrize("name", sorted(REPORT_EXAMPLES))
def test_the_report_examples_are_accepted_by_the_packaged_catalog_and_registry(name: str) -> None:
    data = read_business_data()
    parsed = parse_report(REPORT_EXAMPLES[name]["value"], is_json=False)
    assert isinstance(parsed, Report), parsed
    judged = validate_report(parsed, data.catalog, data.registry, datetime(2025, 1, 1, tzinfo=UTC))
    assert isinstance(judged, Accepted), judged
