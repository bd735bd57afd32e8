"""One report of a request on its way through the ingest, and its entry in a batch's answer."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from dxpulse.domain.validation import Problem
from schemas import Report
from services.ingest import problems
from services.ingest.models import ItemResult, ItemStatus, ProblemDetails
from services.ingest.store import EventKey


@dataclass
class Item:
    """One report of a request on its way through: parsed (or not), then judged, then published."""

    index: int
    report: Report | None
    problem: Problem | None = None
    status: ItemStatus = "rejected"

    @functools.cached_property
    def key(self) -> EventKey:
        """(reporter, event id); asked for several times per report on its way, so built once."""
        assert self.report is not None
        return (self.report.reporter, self.report.event_id)


def item_result(item: Item, raw: list[Any]) -> dict[str, Any]:
    """An item's ``ItemResult`` as JSON; built directly for the usual outcome (a model per report
    costs a tenth of a batch's CPU), through the model where there is a problem to describe.
    ``raw`` holds the batch's items as sent where any did not parse (for their event ids)."""
    event_id = str(item.report.event_id) if item.report is not None else raw_event_id(raw[item.index])
    if item.problem is None:
        return {"index": item.index, "event_id": event_id, "status": item.status, "problem": None}
    problem = ProblemDetails.model_validate(problems.problem_body(item.problem))
    return ItemResult(index=item.index, event_id=event_id, status="rejected", problem=problem).model_dump(
        mode="json"
    )


def raw_event_id(value: Any) -> str | None:
    """The event id of an item that did not parse, when it has a usable one: a short string that
    UTF-8 can write (JSON's ``\\ud800`` escape decodes to a lone surrogate, which it cannot)."""
    found = value.get("event_id") if isinstance(value, dict) else None
    if not isinstance(found, str) or len(found) > 64:
        return None
    try:
        found.encode()
    except UnicodeEncodeError:
        return None
    return found
