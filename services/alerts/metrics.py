"""The alerts worker's Prometheus metrics: transitions, Alertmanager pushes and the alerts firing now."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dxpulse.domain.catalog import Severity
from dxpulse.domain.rules import RULES
from dxpulse.monitoring import ServiceMetrics
from schemas import AlertEvent

SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")


class FiringCollector(Collector):
    """``dxpulse_alerts_firing{rule,severity}``, counted from the alert state at scrape time."""

    def __init__(self, firing: Callable[[], list[AlertEvent]]) -> None:
        self.firing = firing

    def collect(self) -> Iterator[Metric]:
        counts = Tally((a.rule, a.severity) for a in self.firing())
        gauge = GaugeMetricFamily(
            "dxpulse_alerts_firing", "Alerts firing now, by rule and severity", labels=["rule", "severity"]
        )
        # Every combination, so a dashboard shows 0 rather than no data.
        for rule in RULES:
            for severity in SEVERITIES:
                gauge.add_metric([rule, severity], counts[(rule, severity)])
        yield gauge


class AlertsMetrics(ServiceMetrics):
    """The alerts worker's Prometheus metrics (names are a contract with the dashboards)."""

    def __init__(self, firing: Callable[[], list[AlertEvent]]) -> None:
        super().__init__()
        self.transitions = Counter(
            "dxpulse_alert_transitions",
            "Alert transitions published, by rule and status",
            ["rule", "status"],
            registry=self.registry,
        )
        self.pushes = Counter(
            "dxpulse_alertmanager_pushes",
            "Pushes to Alertmanager, by outcome (ok, error)",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(FiringCollector(firing))
