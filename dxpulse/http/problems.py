"""RFC 9457 problem+json for both HTTP APIs: the body model, the response and its OpenAPI entries."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from dxpulse.http.problem_types import PROBLEM_BASE as PROBLEM_BASE
from dxpulse.http.problem_types import PROBLEM_TYPES, problem_examples

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


def problem_doc(
    description: str, *, headers: tuple[str, ...] = (), slugs: Sequence[str] | None = None
) -> dict[str, Any]:
    """An OpenAPI response entry whose body is a ProblemDetails, with ``headers`` (integer values) and
    an example of each of ``slugs``: by default, of each problem type the description names."""
    if slugs is None:
        named = (word for word in re.findall(r"[a-z]+(?:-[a-z]+)*", description) if word in PROBLEM_TYPES)
        slugs = list(dict.fromkeys(named))
    entry: dict[str, Any] = {
        "description": description,
        "content": {
            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}, "examples": problem_examples(*slugs)}
        },
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
