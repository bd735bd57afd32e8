"""``POST /v1/reports``: one report, served by a plain Starlette route (``served``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.routing import Route

from dxpulse.domain.validation import Problem, parse_report
from dxpulse.http.problems import problem_doc
from services.ingest import problems
from services.ingest.api.deps import admit
from services.ingest.api.openapi import REPORT_EXAMPLES, common_responses, json_body, outcome_example
from services.ingest.api.refusals import retry_after
from services.ingest.items import Item
from services.ingest.models import Outcome

router = APIRouter()


@router.post(
    "/v1/reports",
    status_code=202,
    response_model=None,
    openapi_extra=json_body("Report", REPORT_EXAMPLES),
    responses={
        202: {
            "model": Outcome,
            "description": "accepted: Kafka acknowledged it (acks=all)",
            "content": {"application/json": {"example": outcome_example("accepted")}},
        },
        200: {
            "model": Outcome,
            "description": "duplicate: this event id was accepted before",
            "content": {"application/json": {"example": outcome_example("duplicate")}},
        },
        403: problem_doc("forbidden-reporter: the token is another reporter's"),
        **common_responses(),
    },
)
async def send_report(request: Request) -> JSONResponse:
    """Send one report. 202 means Kafka has it; 200 "duplicate" means it was accepted before."""
    sender = await admit(request)
    parsed = parse_report(sender.body)
    if isinstance(parsed, Problem):
        raise sender.refused(parsed)
    sender.spend(1)
    item = Item(0, parsed)
    await sender.ingest.process(sender.subject, [item])
    if item.problem is not None:
        return problems.problem_response(item.problem)
    if item.status == "unavailable":
        return problems.problem_response(problems.KAFKA_UNAVAILABLE, headers=retry_after(sender.ingest))
    code = 202 if item.status == "accepted" else 200
    return JSONResponse({"status": item.status, "event_id": str(parsed.event_id)}, status_code=code)


served = Route("/v1/reports", send_report, methods=["POST"])
"""What answers ``POST /v1/reports``, ahead of the router's route, which documents it.

The hot path of single reports skips FastAPI's dependency solving and parameter handling, a quarter
of a request's instructions (docs/design/ingest.md, The request path): ``send_report`` takes the
request as it is and admits its sender itself. The handlers and middleware are the app's, as for
every route.
"""
