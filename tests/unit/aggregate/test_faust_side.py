"""The aggregator's faust side, on an app that never starts: its table view, changelog records and metrics."""

from __future__ import annotations

import json

import faust
from prometheus_client.parser import text_string_to_metric_families

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.registry import default_registry
from dxpulse.faust_engine.support import json_table
from dxpulse.monitoring import RollupGauges
from schemas.events import report_key
from services.aggregate.app import STATE_TABLE, BatchSender, FaustTableView
from services.aggregate.metrics import AggregateMetrics
from services.aggregate.processing import BatchAggregator
from tests.unit.aggregate.support import MemoryTable, aggregator, home_partition, messages_of
from tests.unit.conftest import COMPUTED_AT, flag, make_report

EMC = report_key("emc_connection", "2024-H1")


async def test_the_changelog_records_recover_what_the_faust_table_holds(app: faust.App) -> None:
    table = json_table(app, STATE_TABLE, 6)
    processor = BatchAggregator(
        FaustTableView(table),
        default_catalog(),
        default_registry(),
        lambda: COMPUTED_AT,
        home_partition=home_partition,
    )
    metrics = AggregateMetrics(RollupGauges(4, 6, lambda: None), default_catalog())
    sender = BatchSender(app, table, metrics, lambda: COMPUTED_AT)
    reports = [make_report(f"province:{code}", flag(True), minutes=1) for code in ("01", "58", "79")]
    out = await processor.process(messages_of(reports))
    records = [sender.changelog_record(write) for write in out.changelog]
    # What faust's recovery makes of them: JSON keys and values, a tombstone deleting its key.
    restored = MemoryTable()
    for key, value in records:
        if value is None:
            restored.delete(json.loads(key))
        else:
            restored.set(json.loads(key), json.loads(value))
    assert set(restored.records) == set(table.data)
    assert aggregator(restored).state_of(EMC) == processor.state_of(EMC)
    assert processor.state_of(EMC).latest.keys() == {report.reporter for report in reports}


def test_reports_are_counted_by_outcome() -> None:
    metrics = AggregateMetrics(RollupGauges(4, 6, lambda: None), default_catalog())
    reports = [make_report(f"province:{code}", flag(True)) for code in ("01", "79")]
    metrics.batch_done(messages_of(reports), [], 2.0, changed=1)
    metrics.dead_lettered("wrong-key")
    counted = {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        if family.name == "dxpulse_aggregate_reports_processed"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert counted == {"changed": 1, "unchanged": 1, "dead_letter": 1}
