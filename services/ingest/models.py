"""Shapes of the ingest API's request and response bodies, for the OpenAPI document and the client."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dxpulse.http.problems import ProblemDetails as ProblemDetails  # the ingest app imports it from here
from schemas import Report
from services.ingest.settings import MAX_BATCH_ITEMS


class Outcome(BaseModel):
    """The answer to one report: accepted (Kafka has it) or duplicate (an earlier send was accepted)."""

    status: Literal["accepted", "duplicate"]
    event_id: str


class BatchRequest(BaseModel):
    """A batch of reports; each is judged on its own."""

    # The API refuses other keys (invalid-batch): the document must say so, as it does for Report.
    model_config = ConfigDict(extra="forbid")

    reports: list[Report] = Field(max_length=MAX_BATCH_ITEMS)


ItemStatus = Literal["accepted", "duplicate", "rejected", "unavailable"]


class ItemResult(BaseModel):
    """The outcome of one report of a batch, by its position in the batch."""

    index: int
    event_id: str | None
    status: ItemStatus = Field(
        description="unavailable: Kafka did not acknowledge it; send it again (the batch is answered 503)."
    )
    problem: ProblemDetails | None = None


class BatchResult(BaseModel):
    """One result per report, in the order sent, and the counts of each outcome."""

    results: list[ItemResult]
    accepted: int
    duplicate: int
    rejected: int


class BatchUnavailable(ProblemDetails):
    """503 for a batch: reports Kafka acknowledged are listed accepted; resend the batch for the rest."""

    results: list[ItemResult] = Field(default=[])  # pydantic copies it per instance
