"""Reports as the ingest receives them, and what tests check of its answers."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from dxpulse.http.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from schemas.events import report_key
from tests.unit.conftest import flag, make_report


def report(reporter: str = "province:79", **fields: Any) -> dict[str, Any]:
    """A report of ``emc_connection`` for 2024-H1 as JSON data, with a fresh event id: valid, unless
    ``fields`` say otherwise."""
    return {**make_report(reporter, flag(True)).model_dump(mode="json"), **fields}


def key_of(sent: dict[str, Any]) -> bytes:
    """The Kafka key of a report."""
    return report_key(sent["indicator"], sent["period"]).encode()


def auth(token: str = "token-79") -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def slug(response: httpx.Response) -> str:
    """The problem slug of a problem+json answer."""
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE, response.text
    body = response.json()
    assert body["status"] == response.status_code
    return str(body["type"]).removeprefix(PROBLEM_BASE)


def metric(exposition: str, sample: str, **labels: str) -> float:
    """The sum of the samples named ``sample`` whose labels include ``labels``."""
    return sum(
        found.value
        for family in text_string_to_metric_families(exposition)
        for found in family.samples
        if found.name == sample and labels.items() <= found.labels.items()
    )
