"""Metrics on the live stack: the sample scenario, scraped by the real Prometheus, feeds every dashboard."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from dxpulse.client import send_as_reporters
from dxpulse.domain.scenario import PERIOD, sample_reports
from dxpulse.kafka.topics import REPORTS, ROLLUPS
from dxpulse.monitoring import CONTRACT
from dxpulse.postgres.token_store import temporary_tokens
from dxpulse.stack.settings import StackSettings
from tests.integration.test_pipeline import _rollups_when_settled
from tests.unit.deploy.test_monitoring_config import panels

pytestmark = pytest.mark.integration

DASHBOARD_DIR = (
    Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "provisioning" / "dashboards" / "json"
)
# What Grafana would put in for its variables: a real period and indicator of the scenario.
SUBSTITUTIONS = {
    "period": PERIOD,
    "indicator": "emc_connection",
    # Grafana's value depends on the time range; this one spans the scenario, sent once before this
    # file's tests, which take minutes: a shorter window left the quantile panels with no observation.
    "__rate_interval": "1h",
    "__range": "1h",
    "datasource": "dxpulse-prometheus",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr: str) -> str:
    return _VARIABLE.sub(lambda m: SUBSTITUTIONS[m.group(1) or m.group(2)], expr)


def panel_queries() -> list[tuple[str, str]]:
    """Every query of every panel of every dashboard, those inside collapsed rows included."""
    queries = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in panels(board):
            for target in panel.get("targets", []):
                queries.append((f"{path.stem}/{panel['title']}/{target['refId']}", target["expr"]))
    return queries


_LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)")


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard/variable, series selector, label) of every query variable, as Grafana runs them."""
    found = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "query":
                match = _LABEL_VALUES.fullmatch(variable["definition"])
                assert match is not None, f"{path.stem}: {variable['definition']} is not label_values(...)"
                found.append((f"{path.stem}/{variable['name']}", match["selector"], match["label"]))
    return found


def query(settings: StackSettings, expr: str) -> list[dict[str, Any]]:
    """An instant query through Prometheus's HTTP API: the result vector."""
    response = httpx.get(
        f"http://127.0.0.1:{settings.prometheus_port}/api/v1/query", params={"query": expr}, timeout=30
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "success", body
    result = body["data"]["result"]
    assert isinstance(result, list)
    return result


def wait_for_data(settings: StackSettings, expr: str, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """Poll until ``expr`` returns at least one series (scrapes and rule evaluations take a moment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = query(settings, expr)
        if result:
            return result
        assert time.monotonic() < deadline, f"no data for {expr}"
        time.sleep(1)


async def _send_scenario_and_a_bad_message(settings: StackSettings) -> None:
    reports = sample_reports()
    async with temporary_tokens(settings.database_url, (r.reporter for r in reports), "test") as tokens:
        sent = await send_as_reporters(f"http://127.0.0.1:{settings.ingest_port}", tokens, reports)
        # One refusal, so the dashboards' rejection panels have a series to show.
        unknown = reports[0].model_copy(update={"event_id": uuid4(), "indicator": "no_such_indicator"})
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.ingest_port}") as http:
            refused = await http.post(
                "/v1/reports",
                content=unknown.model_dump_json(),
                headers={"Authorization": f"Bearer {tokens[unknown.reporter]}"},
            )
    assert [outcome.reason for _, outcome in sent if not outcome.ok] == []
    assert refused.status_code == 422, refused.text
    # A producer writing straight to Kafka a body that is not JSON and one that is not a report:
    # the aggregator dead-letters both.
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(REPORTS, key=b"emc_connection|2024-H1", value=b"{not json")
        await producer.send_and_wait(REPORTS, key=b"emc_connection|2024-H1", value=b'{"schema_version": 1}')
    finally:
        await producer.stop()
    await _rollups_when_settled(settings)
    # An analyst's question, so the query service's request counter has a series.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.query_port}") as http:
        (await http.get("/v1/rollups", params={"indicator": "emc_connection"})).raise_for_status()


@pytest.fixture(scope="module")
def scraped(pipeline: StackSettings) -> StackSettings:
    """The pipeline after the sample scenario (and one bad message), with Prometheus having seen it."""
    # Scraped once before the scenario, so that rates and quantiles see its traffic as an increase
    # (a series whose first sample already counts it has no rate). Earlier tests of a whole run
    # usually gave Prometheus that time; this file alone did not.
    wait_for_data(pipeline, "dxpulse_ingest_produce_seconds_count")
    wait_for_data(pipeline, "dxpulse_end_to_end_seconds_count")
    asyncio.run(_send_scenario_and_a_bad_message(pipeline))
    wait_for_data(pipeline, 'dxpulse_rollup_value{scope="national"} > 0')
    return pipeline


def values(result: list[dict[str, Any]]) -> list[float]:
    return [float(series["value"][1]) for series in result]


@pytest.mark.parametrize(
    "expr",
    [
        # ingest: reports received (every outcome), accepted and rejected by reason and reporter group
        "sum(dxpulse_ingest_reports_total)",
        'dxpulse_ingest_reports_total{outcome="accepted",reason="",group="provinces"}',
        'dxpulse_ingest_reports_total{outcome="accepted",reason="",group="ministries"}',
        'dxpulse_ingest_reports_total{outcome="accepted",reason="",group="national"}',
        'dxpulse_ingest_reports_total{outcome="rejected",reason="unknown-indicator",group="ministries"}',
        # Kafka produce latency
        "dxpulse_ingest_produce_seconds_count",
        "dxpulse_ingest_produce_seconds_sum",
        # aggregator
        'dxpulse_aggregate_reports_processed_total{outcome="changed"}',
        'dxpulse_aggregate_reports_processed_total{outcome="dead_letter"}',
        'dxpulse_dead_letters_total{reason="invalid-report"}',
        'dxpulse_dead_letters_total{reason="malformed-json"}',
        "dxpulse_aggregate_rollups_published_total",
        "dxpulse_end_to_end_seconds_count",
        "dxpulse_end_to_end_seconds_sum",
        'dxpulse_rollup_value{scope="national"}',
        'dxpulse_rollup_attainment{scope="national"}',
        'dxpulse_rollup_completeness{scope="national"}',
        # the gauges' re-read of the rollup topic at the worker's first assignment ended
        "dxpulse_rollup_gauges_reread_seconds_count",
        # consumer lag per partition: back to 0 once settled, so its peak while the scenario went through
        f'max_over_time(dxpulse_consumer_lag{{app="dxpulse-aggregate",topic="{REPORTS}"}}[1h])',
        f'max_over_time(dxpulse_consumer_lag{{app="dxpulse-alerts",topic="{ROLLUPS}"}}[1h])',
        # alerts: EMC at 97.6% fires below_target
        'dxpulse_alert_transitions_total{rule="below_target",status="firing"}',
        'dxpulse_alerts_firing{rule="below_target",severity="critical"}',
        'dxpulse_alertmanager_pushes_total{outcome="ok"}',
        # history: rollups became revisions, reports reporter_latest rows, in timed transactions
        'dxpulse_history_rollups_read_total{outcome="added"}',
        'dxpulse_history_reports_read_total{outcome="recorded"}',
        'dxpulse_history_write_seconds_count{table="rollup_history"}',
        # faust's Prometheus sensor on the workers: their internals
        'faust_messages_received_total{job="aggregate"}',
        'faust_consumer_commit_latency_count{job="aggregate"}',
        'faust_messages_received_total{job="alerts"}',
        'faust_consumer_commit_latency_count{job="alerts"}',
        'faust_messages_received_total{job="history"}',
    ],
)
def test_metric_is_present_and_non_zero(scraped: StackSettings, expr: str) -> None:
    result = wait_for_data(scraped, f"{expr} > 0")
    assert all(v > 0 for v in values(result))


@pytest.mark.parametrize(
    ("name", "job"), [(name, job) for name, owners in CONTRACT.items() for job in owners.split(",")]
)
def test_every_contract_metric_is_scraped_from_each_service_exporting_it(
    scraped: StackSettings, name: str, job: str
) -> None:
    # A histogram family is stored as its _bucket, _sum and _count series.
    wait_for_data(scraped, f'{{__name__=~"{name}|{name}_count",job="{job}"}}', timeout_s=30)


def test_business_gauges_carry_the_scenario_figures(scraped: StackSettings) -> None:
    labels = f'indicator="emc_connection",period="{PERIOD}",scope="national"'
    (value,) = values(wait_for_data(scraped, f"dxpulse_rollup_value{{{labels}}}"))
    assert round(value, 3) == 0.976
    (attainment,) = values(query(scraped, f"dxpulse_rollup_attainment{{{labels}}}"))
    assert round(attainment, 3) == 0.976
    (completeness,) = values(query(scraped, f"dxpulse_rollup_completeness{{{labels}}}"))
    assert completeness == 1.0
    # The scenario's six indicators, each national rollup exported once (one aggregator owns each);
    # other tests on the same stack add figures for other periods.
    assert len(query(scraped, f'dxpulse_rollup_value{{scope="national",period="{PERIOD}"}}')) == 6


@pytest.mark.parametrize("app", ["dxpulse-aggregate", "dxpulse-alerts", "dxpulse-history"])
def test_every_worker_exports_consumer_lag_per_partition(scraped: StackSettings, app: str) -> None:
    result = wait_for_data(scraped, f'dxpulse_consumer_lag{{app="{app}"}}')
    partitions = {(s["metric"]["topic"], s["metric"]["partition"]) for s in result}
    # The single worker is assigned every partition of the topics its agents read.
    topics = {topic for topic, _ in partitions}
    assert {(t, str(p)) for t in topics for p in range(scraped.topic_partitions)} == partitions
    assert all(v >= 0 for v in values(result))


def test_prometheus_scrapes_every_service_of_the_stack(scraped: StackSettings) -> None:
    result = wait_for_data(scraped, 'up{system="dxpulse"}')
    assert {s["metric"]["job"]: float(s["value"][1]) for s in result} == {
        "ingest": 1.0,
        "aggregate": 1.0,
        "alerts": 1.0,
        "history": 1.0,
        "query": 1.0,
        # Started beside Prometheus by the stack: PostgreSQL's metrics for the pipeline dashboard.
        "postgres-exporter": 1.0,
    }
    (pg_up,) = values(wait_for_data(scraped, 'pg_up{job="postgres-exporter"}'))
    assert pg_up == 1.0


def test_prometheus_loaded_the_pipeline_rules(scraped: StackSettings) -> None:
    response = httpx.get(f"http://127.0.0.1:{scraped.prometheus_port}/api/v1/rules", timeout=30)
    groups = {g["name"]: g for g in response.json()["data"]["groups"]}
    assert set(groups) == {"dxpulse-recording", "dxpulse-pipeline"}
    assert all(rule["health"] == "ok" for g in groups.values() for rule in g["rules"])


@pytest.mark.parametrize(("panel", "expr"), panel_queries(), ids=[name for name, _ in panel_queries()])
def test_dashboard_panel_returns_data(scraped: StackSettings, panel: str, expr: str) -> None:
    # The fixture waited for the first scrapes; rates need a second sample at most.
    result = wait_for_data(scraped, substitute(expr), timeout_s=30)
    # Grafana draws NaN (a quantile of no observations) as nothing: at least one real number.
    assert any(math.isfinite(v) for v in values(result)), result


@pytest.mark.parametrize(
    ("variable", "selector", "label"), variable_queries(), ids=[name for name, *_ in variable_queries()]
)
def test_dashboard_variable_offers_the_value_the_panels_are_run_with(
    scraped: StackSettings, variable: str, selector: str, label: str
) -> None:
    # Grafana's label_values(selector, label), through Prometheus's query API.
    offered = {s["metric"][label] for s in wait_for_data(scraped, f"group by ({label}) ({selector})")}
    assert SUBSTITUTIONS[variable.split("/")[1]] in offered, offered
