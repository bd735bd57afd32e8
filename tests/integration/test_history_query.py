"""History and the query API on the real stack: PostgreSQL written by the history writer, read over HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from dxpulse.client import IngestClient
from dxpulse.domain.registry import default_registry
from dxpulse.domain.scenario import sample_reports
from dxpulse.domain.tokens import READER
from dxpulse.kafka.subscriber import latest_rollups, read_records
from dxpulse.kafka.topics import ROLLUPS
from dxpulse.postgres.token_store import temporary_tokens
from dxpulse.stack.settings import StackSettings
from schemas import FlagValue, RatioValue, Report, ReportValue, Rollup
from services.history.core import new_revisions, parse_published, replay_rollups

pytestmark = pytest.mark.integration

T = TypeVar("T")
BASE = datetime(2024, 12, 20, 9, 0, tzinfo=UTC)
"""Observation times of the reports these tests add, for 2024-H2 (no other test uses that period)."""


def _report(reporter: str, indicator: str, value: ReportValue, minutes: int) -> Report:
    return Report(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"history-test|{reporter}|{indicator}|{minutes}"),
        reporter=reporter,
        indicator=indicator,
        period="2024-H2",
        observed_at=BASE + timedelta(minutes=minutes),
        value=value,
    )


DIGITISATION = [
    _report("province:01", "records_digitisation_rate", RatioValue(numerator=10, denominator=100), 0),
    _report("province:02", "records_digitisation_rate", RatioValue(numerator=30, denominator=60), 0),
    _report("ministry:MOH", "records_digitisation_rate", RatioValue(numerator=5, denominator=50), 0),
    # A restatement, then an older observation arriving late: the newest (45/100) must win.
    _report("province:01", "records_digitisation_rate", RatioValue(numerator=45, denominator=100), 30),
    _report("province:01", "records_digitisation_rate", RatioValue(numerator=99, denominator=100), 10),
]
"""records_digitisation_rate 2024-H2: three of its 84 expected reporters, so 81 are missing."""

FLAPPING = [
    _report("province:02", "edw_connection", FlagValue(value=True), 60),
    _report("province:01", "edw_connection", FlagValue(value=True), 1),
    _report("province:01", "edw_connection", FlagValue(value=False), 2),
    _report("province:01", "edw_connection", FlagValue(value=True), 3),
]
"""edw_connection 2024-H2, provinces: 2/63, 1/63, 2/63 with the same newest observation, so the
third figure has the first one's revision; history must still show three steps after the first."""
FLAPPING_KEY = "edw_connection|2024-H2|provinces"
FLAPPING_STEPS = [(1, 1), (2, 2), (1, 2), (2, 2)]
"""(numerator, reporters reported) of the figure after each report of FLAPPING."""


async def _send(settings: StackSettings, reports: list[Report]) -> None:
    """One by one in the order given (the flapping figures depend on it), each with its reporter's token."""
    url = f"http://127.0.0.1:{settings.ingest_port}"
    async with temporary_tokens(settings.database_url, (r.reporter for r in reports), "test") as tokens:
        clients = {reporter: IngestClient(url, token=token) for reporter, token in tokens.items()}
        try:
            results = [await clients[report.reporter].send(report) for report in reports]
        finally:
            for client in clients.values():
                await client.close()
    assert [r.problem for r in results if not r.accepted] == []


async def _eventually(what: str, check: Callable[[], Awaitable[T | None]], timeout_s: float = 180.0) -> T:
    """Poll ``check`` until it returns something other than None; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result is not None:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(1)


async def _all_pages(http: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        response = await http.get(path, params={**params, "offset": offset})
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        offset = page["next_offset"]
    return items


async def _sent_and_settled(settings: StackSettings) -> dict[str, Rollup]:
    """Send every report these tests use; wait until history holds the topic's current rollups."""
    await _send(settings, [*sample_reports(), *DIGITISATION])
    if FLAPPING_KEY in await latest_rollups(settings.kafka_bootstrap):
        await _send(settings, FLAPPING)  # sent by an earlier test: duplicates, which change nothing
    else:
        # Each flapping figure must be published before the next report: the aggregator takes
        # reports in batches, and a batch publishes only its last figure per scope.
        for report, step in zip(FLAPPING, FLAPPING_STEPS, strict=True):
            await _send(settings, [report])

            async def published(step: tuple[int, int] = step) -> bool | None:
                figure = (await latest_rollups(settings.kafka_bootstrap)).get(FLAPPING_KEY)
                return True if figure and (figure.numerator, figure.reporters_reported) == step else None

            await _eventually(f"{FLAPPING_KEY} at {step}", published)

    async def settled() -> dict[str, Rollup] | None:
        topic = await latest_rollups(settings.kafka_bootstrap)
        if FLAPPING_KEY not in topic:
            return None
        national = [r for k, r in topic.items() if k.endswith("2024-H1|national")]
        if len(national) < 6 or any(r.report_count < _sent_for(r) for r in national):
            return None
        conn = await asyncpg.connect(settings.database_url)
        try:
            rows = await conn.fetch("SELECT indicator, period, scope, revision FROM rollup_current")
            latest = await conn.fetch("SELECT event_id FROM reporter_latest")
        finally:
            await conn.close()
        current = {f"{r['indicator']}|{r['period']}|{r['scope']}": r["revision"] for r in rows}
        expected_latest = len(
            {(r.reporter, r.indicator, r.period) for r in [*sample_reports(), *DIGITISATION]}
        )
        expected_latest += 2  # the two reporters of FLAPPING
        # The latest values have an agent of their own, which may lag the rollups: a row per figure
        # is not enough, this test's own figures must hold their newest report (a flag flapped).
        if (
            current != {k: r.revision for k, r in topic.items()}
            or len(latest) < expected_latest
            or not _newest_ids([*DIGITISATION, *FLAPPING]) <= {str(row["event_id"]) for row in latest}
        ):
            return None
        return topic

    return await _eventually("history to hold every current rollup", settled)


def _newest_ids(reports: list[Report]) -> set[str]:
    """The event id of the newest report of each (reporter, indicator, period) among ``reports``."""
    newest: dict[tuple[str, str, str], Report] = {}
    for r in reports:
        kept = newest.get((r.reporter, r.indicator, r.period))
        if kept is None or (kept.observed_at, str(kept.event_id)) < (r.observed_at, str(r.event_id)):
            newest[(r.reporter, r.indicator, r.period)] = r
    return {str(r.event_id) for r in newest.values()}


def _sent_for(rollup: Rollup) -> int:
    return len({r.reporter for r in sample_reports() if r.indicator == rollup.indicator})


async def test_query_api_against_the_real_postgresql(pipeline: StackSettings) -> None:
    topic = await _sent_and_settled(pipeline)
    registry = default_registry()
    async with (
        temporary_tokens(pipeline.database_url, [READER], "test") as tokens,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{pipeline.query_port}",
            timeout=30,
            headers={"Authorization": f"Bearer {tokens[READER]}"},  # reporters' values need it
        ) as http,
    ):
        # Current rollups: every page together is exactly the topic's current figures.
        listed = await _all_pages(http, "/v1/rollups", limit=7)
        assert {i["rollup"]["revision"] for i in listed} == {r.revision for r in topic.values()}
        assert len(listed) == len(topic)
        keys = [(i["rollup"]["indicator"], i["rollup"]["period"], i["rollup"]["scope"]) for i in listed]
        assert keys == sorted(keys)

        emc = (
            await http.get("/v1/rollups", params={"indicator": "emc_connection", "scope": "national"})
        ).json()
        assert [i["rollup"]["period"] for i in emc["items"]] == ["2024-H1"]
        figure = Rollup.model_validate(emc["items"][0]["rollup"])
        assert (figure.numerator, figure.denominator, round(figure.value or 0, 3)) == (82, 84, 0.976)
        national = {
            i["rollup"]["indicator"]: Rollup.model_validate(i["rollup"])
            for i in await _all_pages(http, "/v1/rollups", period="2024-H1", scope="national")
        }
        assert len(national) == 6
        assert (
            national["gov_reporting_connection"].numerator,
            national["gov_reporting_connection"].denominator,
        ) == (
            78,
            85,
        )
        assert round(national["online_records_rate"].value or 0, 2) == 0.42
        assert round(national["digital_tech_enterprises"].attainment or 0, 3) == 1.049

        # History of one rollup: numbered without gaps, ending at the current figure.
        history = await _all_pages(http, "/v1/rollups/emc_connection/2024-H1/national/history", limit=1)
        assert [i["seq"] for i in history] == list(range(1, len(history) + 1))
        assert history[-1]["rollup"]["revision"] == topic["emc_connection|2024-H1|national"].revision
        flapping = await _all_pages(http, "/v1/rollups/edw_connection/2024-H2/provinces/history")
        steps = [(i["rollup"]["numerator"], i["rollup"]["reporters_reported"]) for i in flapping]
        assert steps == FLAPPING_STEPS
        assert flapping[1]["rollup"]["revision"] == flapping[3]["rollup"]["revision"]

        # Who reported EMC: all 84; the two not connected reported false (they lag, not missing).
        emc_status = (await http.get("/v1/reporting/emc_connection/2024-H1")).json()
        assert (emc_status["expected"], len(emc_status["reported"]), emc_status["missing"]) == (84, 84, [])
        not_connected = {r["reporter"] for r in emc_status["reported"] if r["value"]["value"] is False}
        assert not_connected == set(topic["emc_connection|2024-H1|national"].lagging)
        assert len(not_connected) == 2
        assert all(r.startswith("ministry:") for r in not_connected)

        # Who is missing digitisation 2024-H2: everyone expected but the three who sent it.
        digitisation = (await http.get("/v1/reporting/records_digitisation_rate/2024-H2")).json()
        reported = {r["reporter"] for r in digitisation["reported"]}
        missing = {m["reporter"] for m in digitisation["missing"]}
        assert reported == {"province:01", "province:02", "ministry:MOH"}
        assert digitisation["expected"] == 84
        assert missing == set(topic["records_digitisation_rate|2024-H2|national"].not_reported)
        assert len(missing) == 81
        assert {m["name"] for m in digitisation["missing"] if m["reporter"] == "province:79"} == {
            registry.reporters["province:79"].name
        }
        ministries = (
            await http.get("/v1/reporting/records_digitisation_rate/2024-H2", params={"scope": "provinces"})
        ).json()
        assert (ministries["expected"], len(ministries["reported"]), len(ministries["missing"])) == (
            63,
            2,
            61,
        )

        # One reporter's values: the newest observation won over the late older one.
        values = await _all_pages(http, "/v1/reporters/province:01/values", limit=2)
        by_figure = {(v["indicator"], v["period"]): v for v in values}
        sent = {
            (r.indicator, r.period)
            for r in [*sample_reports(), *DIGITISATION, *FLAPPING]
            if r.reporter == "province:01"
        }
        assert set(by_figure) == sent
        restated = by_figure[("records_digitisation_rate", "2024-H2")]
        assert (restated["value"]["numerator"], restated["observed_at"]) == (45, "2024-12-20T09:30:00Z")
        assert by_figure[("edw_connection", "2024-H2")]["value"]["value"] is True
        only = (
            await http.get("/v1/reporters/province:01/values", params={"indicator": "emc_connection"})
        ).json()
        assert [v["indicator"] for v in only["items"]] == ["emc_connection"]

        # Errors and the service's own endpoints.
        assert (await http.get("/v1/reporters/province:99/values")).status_code == 404
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert "/v1/reporting/{indicator}/{period}" in (await http.get("/openapi.json")).json()["paths"]
        metrics = (await http.get("/metrics")).text
        assert 'dxpulse_query_requests_total{endpoint="/v1/rollups",status="200"}' in metrics
        assert (
            'dxpulse_query_requests_total{endpoint="/v1/reporters/{reporter}/values",status="404"} 1.0'
            in metrics
        )


def _rows_query() -> str:
    return (
        "SELECT indicator || '|' || period || '|' || scope AS key, seq, revision, source_partition,"
        " source_offset, body::text AS body FROM rollup_history ORDER BY key, seq"
    )


async def _history(dsn: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await conn.fetch(_rows_query())]
    finally:
        await conn.close()


def _other_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def test_history_has_neither_gaps_nor_duplicates_after_the_rollup_topic_is_replayed(
    pipeline: StackSettings,
) -> None:
    await _sent_and_settled(pipeline)
    records = await read_records(pipeline.kafka_bootstrap, ROLLUPS)
    published = [m for r in records if (m := parse_published(r.partition, r.offset, r.value)) is not None]
    assert len(published) == len(records)
    # What history must be: every step of every rollup on the topic, numbered 1, 2, 3, ... per rollup.
    expected, _ = new_revisions({}, published)
    expected_keys = sorted((r.source.rollup.key, r.seq, r.source.rollup.revision) for r in expected)

    live = await _history(pipeline.database_url)
    assert sorted(row[:3] for row in live) == expected_keys, (
        "the live writer's history differs from the topic"
    )
    seqs: dict[str, list[int]] = {}
    for key, seq, *_ in live:
        seqs.setdefault(key, []).append(seq)
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values()), "a gap in a rollup's revisions"
    assert len(seqs["edw_connection|2024-H2|provinces"]) == 4

    # Replaying the whole topic into the same database adds nothing and changes nothing.
    read, added = await replay_rollups(pipeline.kafka_bootstrap, pipeline.database_url)
    assert (read, added) == (len(records), 0)
    assert await _history(pipeline.database_url) == live

    # Replaying into an empty database rebuilds exactly the same history, offsets and bodies included.
    name = f"replay_{uuid.uuid4().hex[:8]}"
    await _admin(pipeline.database_url, f'CREATE DATABASE "{name}"')
    try:
        fresh = _other_database(pipeline.database_url, name)
        read, added = await replay_rollups(pipeline.kafka_bootstrap, fresh)
        assert (read, added) == (len(records), len(expected))
        assert await _history(fresh) == live
        # Twice is the same as once.
        assert (await replay_rollups(pipeline.kafka_bootstrap, fresh))[1] == 0
    finally:
        await _admin(pipeline.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
