"""dxpulse sends with dxpulse_client: the same classes, pydantic reports as their JSON, the same ids."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import dxpulse_client
import httpx
from hypothesis import given
from hypothesis import strategies as st

from dxpulse import client
from dxpulse.cli.report_files import derived_event_id
from schemas import Report
from schemas.events import RatioValue


def test_dxpulse_client_is_the_installable_package() -> None:
    assert client.IngestClient is dxpulse_client.IngestClient
    assert client.ItemOutcome is dxpulse_client.ItemOutcome


async def test_a_pydantic_report_is_sent_as_its_json() -> None:
    report = Report(
        event_id=uuid.uuid4(),
        reporter="province:79",
        indicator="online_records_rate",
        period="2024-H1",
        observed_at=datetime(2024, 6, 30, 10, tzinfo=UTC),
        value=RatioValue(numerator=1, denominator=2),
    )
    bodies: list[object] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        items = json.loads(request.content)["reports"]
        results = [{"index": i, "event_id": r["event_id"], "status": "accepted"} for i, r in enumerate(items)]
        return httpx.Response(200, json={"results": results})

    async with client.IngestClient("http://i", token="t", transport=httpx.MockTransport(answer)) as sender:
        outcomes = await sender.send_all([report])
    assert bodies == [{"reports": [report.model_dump(mode="json")]}]
    assert outcomes[0].event_id == str(report.event_id)


@given(
    st.sampled_from(["province:79", "ministry:MOH"]),
    st.text(min_size=1, max_size=20),
    st.sampled_from(["2024", "2024-H1", "2024-07"]),
    st.text(max_size=30),
)
def test_the_client_derives_the_same_event_ids_as_dxpulse_send(
    reporter: str, indicator: str, period: str, observed_at: str
) -> None:
    ours = dxpulse_client.derived_event_id(reporter, indicator, period, observed_at)
    assert ours == derived_event_id(reporter, indicator, period, observed_at)
