"""``POST /v1/batches``: up to 500 reports, each answered on its own."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from dxpulse.domain.validation import Problem, parse_report
from dxpulse.http.problems import PROBLEM_MEDIA_TYPE
from services.ingest import problems
from services.ingest.api.deps import AdmittedSender, Sender
from services.ingest.api.openapi import (
    BATCH_EXAMPLES,
    BATCH_RESULT_EXAMPLE,
    UNAVAILABLE_BATCH_EXAMPLE,
    common_responses,
    json_body,
)
from services.ingest.api.refusals import retry_after
from services.ingest.items import Item, item_result
from services.ingest.models import BatchRequest, BatchResult
from services.ingest.service import Ingest

router = APIRouter()


@router.post(
    "/v1/batches",
    response_model=None,
    openapi_extra=json_body("BatchRequest", BATCH_EXAMPLES),
    responses={
        200: {
            "model": BatchResult,
            "description": "one result per report, in order",
            "content": {"application/json": {"example": BATCH_RESULT_EXAMPLE}},
        },
        503: {
            "description": "kafka-unavailable: the results say which reports Kafka did acknowledge",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/BatchUnavailable"},
                    "example": UNAVAILABLE_BATCH_EXAMPLE,
                }
            },
        },
        **{k: v for k, v in common_responses().items() if k != 503},
    },
)
async def send_batch(sender: AdmittedSender) -> JSONResponse:
    """Send up to 500 reports as {"reports": [...]}; each gets its own result."""
    try:
        # The usual batch, every report valid: one pass of pydantic over the bytes (decoding the
        # JSON, then validating each report's dict on its own, costs a quarter of a batch's CPU).
        whole = BatchRequest.model_validate_json(sender.body).reports
    except ValidationError:
        whole = None  # judged item by item below, which names each problem
    if whole is not None:
        _admit(sender, len(whole))
        items = [Item(i, report) for i, report in enumerate(whole)]
        raw: list[Any] = []
    else:
        raw = _reports_as_sent(sender)
        _admit(sender, len(raw))  # before parsing: a refusal stays cheap
        items = [_parsed(index, value) for index, value in enumerate(raw)]
    await sender.ingest.process(sender.subject, items)
    return _answer([item_result(item, raw) for item in items], sender.ingest)


def _reports_as_sent(sender: Sender) -> list[Any]:
    """The batch's reports as decoded JSON; 400 if the body is not JSON, 422 if not a batch."""
    try:
        data = json.loads(sender.body)
    except (ValueError, RecursionError) as error:
        raise sender.refused(problems.malformed_json(error)) from None
    raw = data.get("reports") if isinstance(data, dict) else None
    if not isinstance(raw, list) or set(data) - {"reports"}:
        raise sender.refused(problems.INVALID_BATCH)
    return raw


def _admit(sender: Sender, size: int) -> None:
    """Refuse a batch of ``size`` reports for its size (413) or the sender's rate (429)."""
    settings = sender.ingest.settings
    sender.ingest.metrics.batch_size.observe(size)
    if size > settings.max_batch_items:
        raise sender.refused(problems.batch_too_large(size, settings.max_batch_items), size)
    if size:
        sender.spend(size)


def _parsed(index: int, value: Any) -> Item:
    parsed = parse_report(value, is_json=False)
    if isinstance(parsed, Problem):
        return Item(index, None, parsed)
    return Item(index, parsed)


def _answer(results: list[dict[str, Any]], ingest: Ingest) -> JSONResponse:
    """200 with every result and the counts, or 503 if Kafka did not acknowledge every valid report."""
    if any(r["status"] == "unavailable" for r in results):
        body = problems.problem_body(problems.KAFKA_UNAVAILABLE)
        body["detail"] = (
            "Kafka did not acknowledge the reports marked unavailable; send the batch again after"
            " Retry-After seconds (reports already accepted will be answered duplicate)"
        )
        body["results"] = results
        return JSONResponse(body, status_code=503, headers=retry_after(ingest), media_type=PROBLEM_MEDIA_TYPE)
    return JSONResponse(
        {
            "results": results,
            "accepted": sum(r["status"] == "accepted" for r in results),
            "duplicate": sum(r["status"] == "duplicate" for r in results),
            "rejected": sum(r["status"] == "rejected" for r in results),
        }
    )
