"""RFC 9457 problem+json for both HTTP APIs: the body model, the response and its OpenAPI entries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

PROBLEM_BASE = "https://dxpulse.dev/problems/"
"""Problem type URIs are this base plus a slug documented in docs/guide/reporting.md."""

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_SCHEMA_REF = "#/components/schemas/ProblemDetails"


class ProblemDetails(BaseModel):
    """An RFC 9457 problem: ``type`` is https://dxpulse.dev/problems/<slug>; ``detail`` says what to fix."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    field: str | None = Field(
        default=None, description="The report field or request parameter at fault, where there is one."
    )


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response from its parts."""
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if field is not None:
        body["field"] = field
    return JSONResponse(
        {**body, **extensions}, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def problem_doc(description: str, *, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    """An OpenAPI response entry whose body is a ProblemDetails, with ``headers`` (integer values)."""
    entry: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }
    if headers:
        entry["headers"] = {name: {"schema": {"type": "integer"}} for name in headers}
    return entry


INVALID_REQUEST_DOC = problem_doc("invalid-request: a parameter is invalid; `field` names it")
"""What FastAPI's default 422 entry (HTTPValidationError) is replaced with: the handler's answer."""

_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document say what the handlers answer: every 422 is problem+json (FastAPI
    documents its own HTTPValidationError), and ProblemDetails is among the schemas. Idempotent."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if "ProblemDetails" not in schemas:
        _, defs = models_json_schema(
            [(ProblemDetails, "serialization")], ref_template="#/components/schemas/{model}"
        )
        schemas.update(defs.get("$defs", {}))
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if responses and "HTTPValidationError" in json.dumps(responses.get("422", {})):
                responses["422"] = INVALID_REQUEST_DOC
    # In this order: ValidationError is referenced from HTTPValidationError alone.
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        others = {k: v for k, v in schemas.items() if k != name}
        text = json.dumps({k: v for k, v in document.items() if k != "components"}) + json.dumps(others)
        if f"#/components/schemas/{name}" not in text:
            schemas.pop(name, None)
    return document
