"""The ingest's OpenAPI document: FastAPI's, plus the bodies the routes parse themselves, and security."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from dxpulse.http.problem_types import PROBLEM_TYPES
from dxpulse.http.problems import problem_doc
from schemas import Report
from services.ingest.models import BatchRequest, BatchUnavailable, ProblemDetails

TITLE = "dxpulse ingest"
SUMMARY = "Local systems send digital-transformation reports here."
DESCRIPTION = (
    "Authenticate with `Authorization: Bearer <token>` (a token issued for your reporter id"
    " with `dxpulse token create`). A 2xx answer means Kafka acknowledged the report with"
    " acks=all. Every refusal is application/problem+json (RFC 9457) whose type is"
    " https://dxpulse.dev/problems/<slug>; the documentation's Problem types page explains each slug."
)
SECURED_PATHS = ("/v1/reports", "/v1/batches")

INVALID_REPORT_SLUGS = (
    "invalid-report",
    "invalid-batch",
    "unsupported-schema-version",
    "negative-value",
    "value-too-large",
    "unknown-indicator",
    "invalid-period",
    "period-too-old",
    "future-period",
    "observation-too-old",
    "future-observation",
    "unknown-reporter",
    "retired-reporter",
    "reporter-not-yet-valid",
    "reporter-not-expected",
    "wrong-value-kind",
    "numerator-exceeds-denominator",
    "unknown-catalog-item",
)
"""The 422 refusals of the report routes: the report, or the batch's shape, is invalid."""

RATIO_REPORT = {
    "event_id": "7d1c6a52-2b7e-4c57-9a43-3f1f0c1e9b10",
    "reporter": "province:79",
    "indicator": "online_records_rate",
    "period": "2024-H1",
    "observed_at": "2024-06-30T10:00:00Z",
    "value": {"kind": "ratio", "numerator": 12345, "denominator": 30000},
}
FLAG_REPORT = {
    "schema_version": 1,
    "event_id": "0b6f4d4e-5c1a-4f7e-8d2b-6a9c3e1f2a77",
    "reporter": "province:79",
    "indicator": "emc_connection",
    "period": "2024-H1",
    "observed_at": "2024-06-30T10:00:00Z",
    "value": {"kind": "flag", "value": True},
}
REPORT_EXAMPLES = {
    "ratio": {"summary": "a ratio: 12,345 of 30,000 records filed online", "value": RATIO_REPORT},
    "flag": {"summary": "a flag: the procedure system is connected to EMC", "value": FLAG_REPORT},
}
BATCH_EXAMPLES = {
    "two reports": {"summary": "two reports", "value": {"reports": [RATIO_REPORT, FLAG_REPORT]}}
}
BATCH_RESULT_EXAMPLE = {
    "results": [
        {"index": 0, "event_id": RATIO_REPORT["event_id"], "status": "accepted", "problem": None},
        {"index": 1, "event_id": FLAG_REPORT["event_id"], "status": "duplicate", "problem": None},
    ],
    "accepted": 1,
    "duplicate": 1,
    "rejected": 0,
}
UNAVAILABLE_BATCH_EXAMPLE = {
    **PROBLEM_TYPES["kafka-unavailable"].body(),
    "detail": "Kafka did not acknowledge the reports marked unavailable; send the batch again after"
    " Retry-After seconds (reports already accepted will be answered duplicate)",
    "results": [
        {"index": 0, "event_id": RATIO_REPORT["event_id"], "status": "accepted", "problem": None},
        {"index": 1, "event_id": FLAG_REPORT["event_id"], "status": "unavailable", "problem": None},
    ],
}
NOT_READY_SCHEMA = {
    "type": "object",
    "required": ["status", "reason"],
    "properties": {
        "status": {"type": "string", "enum": ["waiting for Kafka", "not ready"]},
        "reason": {"type": "string"},
        "topic": {"type": "string"},
        "failing_partitions": {"type": "array", "items": {"type": "integer"}},
    },
}
"""/readyz's 503 body (``KafkaLink.not_ready``)."""
NOT_READY_EXAMPLE = {
    "status": "not ready",
    "reason": "Kafka does not acknowledge reports sent to these partitions",
    "topic": "dxpulse.reports.v1",
    "failing_partitions": [3],
}


def outcome_example(status: str) -> dict[str, str]:
    """The answer to the ratio report example: accepted, or duplicate."""
    return {"status": status, "event_id": str(RATIO_REPORT["event_id"])}


def common_responses() -> dict[int | str, dict[str, Any]]:
    """The refusals both report routes answer."""
    return {
        400: problem_doc("malformed-json: the body is not JSON"),
        401: {
            **problem_doc("unauthorized: no, unknown or revoked token"),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        },
        413: problem_doc("body-too-large, batch-too-large"),
        422: problem_doc(
            "the report (or batch) is invalid; the type names what to fix", slugs=INVALID_REPORT_SLUGS
        ),
        429: problem_doc("rate-limited", headers=("Retry-After",)),
        503: problem_doc(
            "kafka-unavailable, store-unavailable: nothing accepted, send again", headers=("Retry-After",)
        ),
    }


def json_body(schema: str, examples: dict[str, Any]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads its JSON body itself, as a ``schema``."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{schema}"},
                    "examples": examples,
                }
            },
        }
    }


class IngestDocument:
    """``app.openapi``: FastAPI's document plus the body schemas the routes parse themselves (to
    answer 400 and 413 before validating), and the bearer token the report routes require."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def __call__(self) -> dict[str, Any]:
        app = self.app
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            _, defs = models_json_schema(
                [
                    (Report, "validation"),
                    (BatchRequest, "validation"),
                    (ProblemDetails, "serialization"),
                    (BatchUnavailable, "serialization"),
                ],
                ref_template="#/components/schemas/{model}",
            )
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(defs.get("$defs", {}))
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path in SECURED_PATHS:
                document["paths"][path]["post"]["security"] = [{"bearer": []}]
            app.openapi_schema = document
        return app.openapi_schema
