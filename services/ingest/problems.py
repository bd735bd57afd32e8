"""The ingest's problem slugs and responses; every refusal says what is wrong and what to fix."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from dxpulse.domain.validation import Problem
from dxpulse.http.problems import PROBLEM_BASE, problem

STATUS: dict[str, int] = {
    "malformed-json": 400,
    "unauthorized": 401,
    "forbidden-reporter": 403,
    "body-too-large": 413,
    "batch-too-large": 413,
    "rate-limited": 429,
    "kafka-unavailable": 503,
    "store-unavailable": 503,
}
"""HTTP status of each problem slug that is not a 422 (every validation problem is)."""

RETRY_SLUGS = frozenset({"rate-limited", "kafka-unavailable", "store-unavailable"})
"""Problems that go away by themselves: answered with Retry-After."""


def status_of(slug: str) -> int:
    return STATUS.get(slug, 422)


def problem_body(found: Problem, **extensions: Any) -> dict[str, Any]:
    """The problem+json body of a problem."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + found.type,
        "title": found.title,
        "status": status_of(found.type),
        "detail": found.detail,
    }
    if found.field is not None:
        body["field"] = found.field
    return {**body, **extensions}


def problem_response(
    found: Problem, *, headers: dict[str, str] | None = None, **extensions: Any
) -> JSONResponse:
    """A problem as an ``application/problem+json`` response."""
    return problem(
        status_of(found.type),
        found.type,
        found.title,
        found.detail,
        field=found.field,
        headers=headers,
        **extensions,
    )


UNAUTHORIZED = Problem(
    "unauthorized",
    "Missing or invalid API token",
    "send 'Authorization: Bearer <token>' with a live token issued for your reporter id"
    " (dxpulse token create <reporter>); the token may be unknown or revoked",
)
KAFKA_UNAVAILABLE = Problem(
    "kafka-unavailable",
    "Report not accepted: the event log is unavailable",
    "nothing was accepted; send the same report(s) again after Retry-After seconds",
)
STORE_UNAVAILABLE = Problem(
    "store-unavailable",
    "Cannot check the API token: the database is unavailable",
    "nothing was accepted; send again after Retry-After seconds",
)


INVALID_BATCH = Problem(
    "invalid-batch",
    "Batch does not match the schema",
    'send {"reports": [report, ...]}, each report as for POST /v1/reports',
    "reports",
)


def malformed_json(error: Exception) -> Problem:
    return Problem("malformed-json", "Malformed JSON", f"the body is not valid JSON: {error}")


def forbidden(subject: str, reporter: str) -> Problem:
    return Problem(
        "forbidden-reporter",
        "Token may not report for this reporter",
        f"this token was issued for {subject} and cannot send reports as {reporter};"
        " use the reporter's own token",
        "reporter",
    )


def body_too_large(limit: int) -> Problem:
    return Problem("body-too-large", "Request body too large", f"the body is over the limit of {limit} bytes")


def batch_too_large(count: int, limit: int) -> Problem:
    return Problem(
        "batch-too-large",
        "Too many reports in one batch",
        f"the batch has {count} reports; send at most {limit} per batch",
        "reports",
    )


def rate_limited(retry_after_s: int) -> Problem:
    return Problem(
        "rate-limited",
        "Too many reports",
        f"this reporter sends faster than allowed; nothing was accepted, send again in {retry_after_s} s",
    )
