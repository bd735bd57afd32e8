"""Requests refused before their reports are judged: counted, and answered problem+json with headers."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from dxpulse.domain.validation import Problem
from services.ingest import problems
from services.ingest.service import Ingest


class Refused(Exception):
    """Raised by a dependency or a route to answer ``response`` at once (``answer_refused``)."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def refusal(
    ingest: Ingest, found: Problem, group: str, n: int = 1, *, retry_after_s: int | None = None
) -> Refused:
    """Count ``n`` reports of ``group`` refused for ``found``, and the refusal to raise.

    401 says how to authenticate (WWW-Authenticate); a problem that goes away by itself says when to
    send again (Retry-After: ``retry_after_s``, or the configured one)."""
    ingest.metrics.count("rejected", group, found.type, n)
    headers: dict[str, str] = {}
    if found.type == "unauthorized":
        headers["WWW-Authenticate"] = 'Bearer realm="dxpulse"'
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    elif found.type in problems.RETRY_SLUGS:
        headers.update(retry_after(ingest))
    return Refused(problems.problem_response(found, headers=headers))


def retry_after(ingest: Ingest) -> dict[str, str]:
    """The Retry-After header of a 503."""
    return {"Retry-After": str(ingest.settings.retry_after_s)}


async def answer_refused(request: Request, error: Exception) -> Response:
    """The exception handler of ``Refused``."""
    assert isinstance(error, Refused)
    return error.response
