"""What the ingest's routes depend on: the ingest itself, and the sender of a report request.

A report request's sender is one dependency (``AdmittedSender``): authenticated, then its body read;
its rate limit is spent once its reports are counted. One, not one each for the token, the body and
the rate limit: FastAPI resolves every dependency, and each one it depends on, at every request, some
60,000 instructions apiece, 7% of a single report's request (cachegrind, the app on in-memory fakes).
Every dependency is ``async def``: FastAPI runs a plain ``def`` in a thread pool, a thread hop per
request for work that never blocks.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from dxpulse.domain.tokens import bearer_token, reporter_group
from dxpulse.domain.validation import Problem
from services.ingest import problems
from services.ingest.api.refusals import Refused, refusal
from services.ingest.service import Ingest
from services.ingest.store import STORE_ERRORS

log = logging.getLogger(__name__)


async def get_ingest(request: Request) -> Ingest:
    ingest: Ingest = request.app.state.ingest
    return ingest


IngestDep = Annotated[Ingest, Depends(get_ingest)]


@dataclass(frozen=True)
class Sender:
    """An authenticated report request with its body read: who sends, and what."""

    ingest: Ingest
    subject: str
    """The reporter id (or ``national:*``) the request's token was issued for."""
    body: bytes
    """At most ``DXPULSE_MAX_BODY_BYTES``."""

    @property
    def group(self) -> str:
        """The subject's reporter group, the metrics' label."""
        return reporter_group(self.subject)

    def refused(self, found: Problem, reports: int = 1) -> Refused:
        """The refusal of ``reports`` reports of this sender for ``found``, counted."""
        return refusal(self.ingest, found, self.group, reports)

    def spend(self, reports: int) -> None:
        """Take ``reports`` from the sender's rate limit (``DXPULSE_RATE_LIMIT_PER_S``, bursts of
        ``DXPULSE_RATE_LIMIT_BURST``), or refuse the request: 429 with Retry-After. Spent once the
        body is parsed: a malformed one costs nothing."""
        wait = self.ingest.rate_limiter.wait(self.subject, reports)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise refusal(
                self.ingest, problems.rate_limited(seconds), self.group, reports, retry_after_s=seconds
            )


async def admit(request: Request) -> Sender:
    """Authenticate the request, then read its body."""
    ingest = await get_ingest(request)
    subject = await authenticate(request, ingest)
    return Sender(ingest, subject, await read_body(request, ingest, subject))


AdmittedSender = Annotated[Sender, Depends(admit)]


async def authenticate(request: Request, ingest: Ingest) -> str:
    """The subject of the request's bearer token; 401 without a live one, 503 while PostgreSQL is down."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise refusal(ingest, problems.UNAUTHORIZED, "unknown")
    try:
        subject = await ingest.tokens.subject(token)
    except STORE_ERRORS as error:
        log.warning("token store unavailable: %s", type(error).__name__)
        raise refusal(ingest, problems.STORE_UNAVAILABLE, "unknown") from None
    if subject is None:
        raise refusal(ingest, problems.UNAUTHORIZED, "unknown")
    return subject


async def read_body(request: Request, ingest: Ingest, subject: str) -> bytes:
    """The body; 413 as soon as it is over the limit, without reading the rest."""
    limit = ingest.settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise refusal(ingest, problems.body_too_large(limit), reporter_group(subject))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise refusal(ingest, problems.body_too_large(limit), reporter_group(subject))
        chunks.append(chunk)
    return b"".join(chunks)
