"""The ingest's OpenAPI document: FastAPI's, plus the bodies the routes parse themselves, and security."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from dxpulse.http.problems import problem_doc
from schemas import Report
from services.ingest.models import BatchRequest, BatchUnavailable, ProblemDetails

TITLE = "dxpulse ingest"
SUMMARY = "Local systems send digital-transformation reports here."
DESCRIPTION = (
    "Authenticate with `Authorization: Bearer <token>` (a token issued for your reporter id"
    " with `dxpulse token create`). A 2xx answer means Kafka acknowledged the report with"
    " acks=all. Every refusal is application/problem+json (RFC 9457) whose type is"
    " https://dxpulse.dev/problems/<slug>."
)
SECURED_PATHS = ("/v1/reports", "/v1/batches")


def common_responses() -> dict[int | str, dict[str, Any]]:
    """The refusals both report routes answer."""
    return {
        400: problem_doc("malformed-json: the body is not JSON"),
        401: {
            **problem_doc("unauthorized: no, unknown or revoked token"),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        },
        413: problem_doc("body-too-large, batch-too-large"),
        422: problem_doc("the report (or batch) is invalid; the type names what to fix"),
        429: problem_doc("rate-limited", headers=("Retry-After",)),
        503: problem_doc(
            "kafka-unavailable, store-unavailable: nothing accepted, send again", headers=("Retry-After",)
        ),
    }


def json_body(schema: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads its JSON body itself, as a ``schema``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
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
