"""Every problem type both HTTP APIs answer, with a typical body: docs/reference/problems.md explains each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBLEM_BASE = "https://dxpulse.dev/problems/"
"""Problem type URIs are this base plus a slug; docs/reference/problems.md has a section per slug."""


@dataclass(frozen=True)
class ProblemType:
    """A problem ``type``: its slug, the HTTP status it comes with, its title and a typical detail."""

    slug: str
    status: int
    title: str
    detail: str
    field: str | None = None

    def body(self, **extensions: Any) -> dict[str, Any]:
        """A problem+json body of this type, as the APIs answer it."""
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field is not None:
            body["field"] = self.field
        return {**body, **extensions}


_TYPES = (
    ProblemType(
        "malformed-json", 400, "Malformed JSON", "the body is not valid JSON: EOF while parsing a value"
    ),
    ProblemType(
        "unauthorized",
        401,
        "Missing or invalid API token",
        "send 'Authorization: Bearer <token>' with a live token issued for your reporter id"
        " (dxpulse token create <reporter>); the token may be unknown or revoked",
    ),
    ProblemType(
        "forbidden-reporter",
        403,
        "Token may not report for this reporter",
        "this token was issued for province:79 and cannot send reports as province:01;"
        " use the reporter's own token",
        "reporter",
    ),
    ProblemType(
        "not-found",
        404,
        "Not found",
        "no indicator 'emc_conection'; GET /v1/indicators lists them",
        "indicator",
    ),
    ProblemType(
        "method-not-allowed", 405, "Method not allowed", "/v1/reports does not answer GET; it answers POST"
    ),
    ProblemType(
        "body-timeout",
        408,
        "Request body not received in time",
        "the request body did not arrive within 30 s; send the request again, with the whole body",
    ),
    ProblemType(
        "body-too-large", 413, "Request body too large", "the body is over the limit of 4194304 bytes"
    ),
    ProblemType(
        "batch-too-large",
        413,
        "Too many reports in one batch",
        "the batch has 501 reports; send at most 500 per batch",
        "reports",
    ),
    ProblemType(
        "invalid-report",
        422,
        "Report does not match the schema",
        "observed_at: Field required; value.numerator: Input should be a valid number",
        "observed_at",
    ),
    ProblemType(
        "invalid-batch",
        422,
        "Batch does not match the schema",
        'send {"reports": [report, ...]}, each report as for POST /v1/reports',
        "reports",
    ),
    ProblemType(
        "unsupported-schema-version",
        422,
        "Unsupported schema version",
        "schema_version 2 is not supported; this API takes schema_version 1"
        " (schemas/json/report.v1.schema.json)",
        "schema_version",
    ),
    ProblemType(
        "negative-value",
        422,
        "Negative amount",
        "value.numerator is -3; counts, numerators and denominators cannot be negative",
        "value.numerator",
    ),
    ProblemType(
        "value-too-large",
        422,
        "Amount too large",
        "value.value is 2e+18; counts, numerators and denominators are at most 1000000000000000"
        " (10^15), far above any real figure: check the unit",
        "value.value",
    ),
    ProblemType(
        "unknown-indicator",
        422,
        "Unknown indicator",
        "indicator 'emc_conection' is not in the catalog; GET /v1/indicators lists them",
        "indicator",
    ),
    ProblemType(
        "invalid-period",
        422,
        "Period does not fit the indicator",
        "period '2024-Q3' is a quarter, but this indicator is reported per half; write e.g. 2024-H1",
        "period",
    ),
    ProblemType(
        "period-too-old",
        422,
        "Period is before the catalog's first",
        "period 1999-H1 starts on 1999-01-01, before 2020-01-01, the first day a reported period may start",
        "period",
    ),
    ProblemType(
        "future-period",
        422,
        "Period has not started",
        "period 2099-H1 starts on 2099-01-01; report it once it has started",
        "period",
    ),
    ProblemType(
        "future-observation",
        422,
        "Observation time is in the future",
        "observed_at 2099-06-30T10:00:00+00:00 is later than now (2025-07-01T08:00:00+00:00);"
        " check the reporting system's clock",
        "observed_at",
    ),
    ProblemType(
        "observation-too-old",
        422,
        "Observation time is before 1970",
        "observed_at 0001-01-01T00:00:00+00:01 is before 1970-01-01T00:00:00Z, earlier than any"
        " system's clock; check the reporting system's clock and date format",
        "observed_at",
    ),
    ProblemType(
        "unknown-reporter",
        422,
        "Unknown reporter",
        "reporter 'province:99' is not in the registry; ids look like province:79, ministry:MOH"
        " or national:MPS",
        "reporter",
    ),
    ProblemType(
        "retired-reporter",
        422,
        "Reporter no longer exists for this period",
        "province:58 (Ninh Thuận) ceased on 2025-06-30 and is not a reporter for 2025-H2;"
        " report as province:56",
        "reporter",
    ),
    ProblemType(
        "reporter-not-yet-valid",
        422,
        "Reporter did not exist in this period",
        "national:MOST (Ministry of Science and Technology (national figures)) exists from 2025-03-01;"
        " report 2024-H1 as the unit that existed then",
        "reporter",
    ),
    ProblemType(
        "reporter-not-expected",
        422,
        "Reporter does not report this indicator",
        "digital_tech_enterprises is reported by provinces; ministry:MOH is not among them",
        "reporter",
    ),
    ProblemType(
        "wrong-value-kind",
        422,
        "Value of the wrong kind",
        'emc_connection is a flag indicator, but the value is a count; send {"kind": "flag", ...}',
        "value.kind",
    ),
    ProblemType(
        "numerator-exceeds-denominator",
        422,
        "Numerator greater than denominator",
        "numerator 5 is greater than denominator 2",
        "value.numerator",
    ),
    ProblemType(
        "unknown-catalog-item",
        422,
        "Unknown catalog item",
        "essential_public_services has no item(s) eps-99; items are eps-01 .. eps-53",
        "value.done",
    ),
    ProblemType(
        "invalid-request",
        422,
        "Invalid request",
        "query parameter limit: Input should be less than or equal to 1000",
        "limit",
    ),
    ProblemType(
        "rate-limited",
        429,
        "Too many reports",
        "this reporter sends faster than allowed; nothing was accepted, send again in 1 s",
    ),
    ProblemType(
        "internal-error",
        500,
        "Internal server error",
        "the server failed on this request; the failure is logged for the operators",
    ),
    ProblemType(
        "kafka-unavailable",
        503,
        "Report not accepted: the event log is unavailable",
        "nothing was accepted; send the same report(s) again after Retry-After seconds",
    ),
    ProblemType(
        "store-unavailable",
        503,
        "Cannot check the API token: the database is unavailable",
        "nothing was accepted; send again after Retry-After seconds",
    ),
    ProblemType(
        "database-unavailable",
        503,
        "History database unavailable",
        "PostgreSQL did not answer in time, is overloaded or has no history tables yet (the history"
        " writer creates them); try again after Retry-After seconds",
    ),
)

PROBLEM_TYPES: dict[str, ProblemType] = {t.slug: t for t in _TYPES}
"""Every problem type by slug. Any other refusal (a status no handler names) has the slug
``http-error`` and the status it is answered with."""

HTTP_ERROR = "http-error"
"""The slug of a refusal no handler names, with its own status and reason phrase."""


def problem_examples(*slugs: str) -> dict[str, dict[str, Any]]:
    """OpenAPI ``examples`` of a problem response: a typical body of each slug's type, by slug."""
    return {slug: {"summary": slug, "value": PROBLEM_TYPES[slug].body()} for slug in slugs}
