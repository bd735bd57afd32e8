"""The history writer's Prometheus metrics (its consumer lag is added by ``add_metrics_page``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from dxpulse.monitoring import ServiceMetrics

TABLES = ("rollup_history", "reporter_latest")
"""The tables the writer's metrics are labelled with."""


class HistoryMetrics(ServiceMetrics):
    """The history writer's Prometheus metrics, every series exported from the start."""

    def __init__(self) -> None:
        super().__init__()
        self.rollups = Counter(
            "dxpulse_history_rollups_read",
            "Rollup messages read, by outcome (added: a new revision; known: a repeat or replay;"
            " unreadable: not a rollup, logged)",
            ["outcome"],
            registry=self.registry,
        )
        self.reports = Counter(
            "dxpulse_history_reports_read",
            "Report messages read, by outcome (recorded: upserted into reporter_latest; refused: one"
            " the aggregator refuses too)",
            ["outcome"],
            registry=self.registry,
        )
        self.write_seconds = Histogram(
            "dxpulse_history_write_seconds",
            "Duration of one batch's transaction, by table",
            ["table"],
            registry=self.registry,
        )
        self.write_failures = Counter(
            "dxpulse_history_write_failures",
            "Writes (or connections for them) that failed with PostgreSQL unreachable and were tried"
            " again, by table",
            ["table"],
            registry=self.registry,
        )
        # Every series exists from the start at 0, so a dashboard shows it and increase() sees
        # the first failure (Prometheus does not count the first sample of a new series).
        for outcome in ("added", "known", "unreadable"):
            self.rollups.labels(outcome=outcome)
        for outcome in ("recorded", "refused"):
            self.reports.labels(outcome=outcome)
        for table in TABLES:
            self.write_seconds.labels(table=table)
            self.write_failures.labels(table=table)
