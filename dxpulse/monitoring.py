"""Prometheus metrics shared by the services: the metric-name contract, consumer lag and rollup gauges."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dxpulse.domain.catalog import Catalog, Indicator
from dxpulse.domain.periods import PeriodError, parse_period
from dxpulse.domain.rules import amount
from dxpulse.kafka.topics import partition_of
from schemas import Rollup
from schemas.events import report_key

CONTRACT: Mapping[str, str] = {
    "dxpulse_ingest_reports_total": "ingest",
    "dxpulse_ingest_produce_seconds": "ingest",
    "dxpulse_ingest_batch_size": "ingest",
    "dxpulse_aggregate_reports_processed_total": "aggregate",
    "dxpulse_dead_letters_total": "aggregate,alerts,history",
    "dxpulse_aggregate_rollups_published_total": "aggregate",
    "dxpulse_end_to_end_seconds": "aggregate",
    "dxpulse_consumer_lag": "aggregate,alerts,history",
    "dxpulse_stalled_partitions_total": "aggregate,alerts,history",
    "dxpulse_rollup_value": "aggregate",
    "dxpulse_rollup_attainment": "aggregate",
    "dxpulse_rollup_completeness": "aggregate",
    "dxpulse_rollup_gauges_reread_seconds": "aggregate",
    "dxpulse_indicator_info": "aggregate",
    "dxpulse_alert_transitions_total": "alerts",
    "dxpulse_alerts_firing": "alerts",
    "dxpulse_alertmanager_pushes_total": "alerts",
    "dxpulse_history_rollups_read_total": "history",
    "dxpulse_history_reports_read_total": "history",
    "dxpulse_history_write_seconds": "history",
    "dxpulse_history_write_failures_total": "history",
    "dxpulse_query_requests_total": "query",
}
"""Every dxpulse metric family (as Prometheus stores it) and the services exporting it.

Dashboards and alerting rules may use only these names (and Prometheus's own ``up``, and
``EXPORTER_METRICS``); a test checks.
"""

EXPORTER_METRICS: Mapping[str, str] = {
    "pg_up": "postgres-exporter",
    "pg_stat_database_numbackends": "postgres-exporter",
    "pg_settings_max_connections": "postgres-exporter",
}
"""The metrics of prometheus-postgres-exporter, which the stack runs beside Prometheus, that the
pipeline dashboard and alerting rules read, and the scrape job exporting them."""


class ServiceMetrics:
    """The base of each service's metrics: a registry of its own, served at its ``/metrics``.

    A registry per service object, not prometheus_client's global one, so that tests can build a
    service twice in one process.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()

    def exposition(self) -> bytes:
        """The registry in Prometheus's text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    CONTENT_TYPE = CONTENT_TYPE_LATEST


LAG_METRIC = "dxpulse_consumer_lag"
INDICATOR_INFO = "dxpulse_indicator_info"
ROLLUP_GAUGES = ("dxpulse_rollup_value", "dxpulse_rollup_attainment", "dxpulse_rollup_completeness")


@dataclass(frozen=True)
class PartitionLag:
    """How many messages of one assigned partition the consumer group has not committed yet."""

    topic: str
    partition: int
    lag: int


def consumer_lag(
    assigned: Iterable[tuple[str, int]],
    highwaters: Mapping[tuple[str, int], int | None],
    committed: Mapping[tuple[str, int], int | None],
) -> list[PartitionLag]:
    """Lag per assigned partition: highwater minus the committed offset (both "next offset" numbers).

    A partition whose highwater is unknown (nothing fetched yet) is left out rather than shown as 0.
    One with no commit yet counts from offset 0: an overestimate on a topic whose oldest messages
    were deleted, which the first commit (within seconds) corrects.
    """
    lags = []
    for tp in sorted(set(assigned)):
        highwater = highwaters.get(tp)
        if highwater is None:
            continue
        lags.append(PartitionLag(tp[0], tp[1], max(0, highwater - (committed.get(tp) or 0))))
    return lags


class ConsumerLagCollector(Collector):
    """``dxpulse_consumer_lag{app,topic,partition}``, read from ``read_lag`` at every scrape."""

    def __init__(self, app_id: str, read_lag: Callable[[], list[PartitionLag]]) -> None:
        self.app_id = app_id
        self.read_lag = read_lag

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            LAG_METRIC,
            "Messages in an assigned partition the consumer group has not committed yet",
            labels=["app", "topic", "partition"],
        )
        for item in self.read_lag():
            family.add_metric([self.app_id, item.topic, str(item.partition)], item.lag)
        yield family


def _period_order(period: str) -> tuple[int, str]:
    try:
        return parse_period(period).start.toordinal(), period
    except PeriodError:
        return 0, period


def newest_periods(rollups: Iterable[Rollup], per_indicator: int) -> list[Rollup]:
    """The rollups of each indicator's ``per_indicator`` newest periods (by period start), in key order."""
    items = list(rollups)
    periods: dict[str, set[str]] = {}
    for rollup in items:
        periods.setdefault(rollup.indicator, set()).add(rollup.period)
    kept = {
        indicator: set(sorted(names, key=_period_order, reverse=True)[:per_indicator])
        for indicator, names in periods.items()
    }
    return sorted((r for r in items if r.period in kept[r.indicator]), key=lambda r: r.key)


def merge_rollups(current: Mapping[str, Rollup], incoming: Iterable[Rollup]) -> dict[str, Rollup]:
    """``current`` updated with ``incoming``; per key the later ``computed_at`` wins (ties keep current).

    A rollup re-read from the topic must not replace a newer one this worker published meanwhile.
    """
    merged = dict(current)
    for rollup in incoming:
        if supersedes(rollup, merged.get(rollup.key)):
            merged[rollup.key] = rollup
    return merged


def supersedes(rollup: Rollup, known: Rollup | None) -> bool:
    """Whether ``rollup`` replaces ``known`` (same key): the later ``computed_at`` wins, a tie keeps known."""
    return known is None or rollup.computed_at > known.computed_at


def gauge_samples(rollups: Iterable[Rollup]) -> dict[str, list[tuple[tuple[str, str, str], float]]]:
    """Each business gauge's samples, labelled (indicator, period, scope); absent figures are left out."""
    samples: dict[str, list[tuple[tuple[str, str, str], float]]] = {name: [] for name in ROLLUP_GAUGES}
    for r in rollups:
        labels = (r.indicator, r.period, r.scope)
        if r.value is not None:
            samples["dxpulse_rollup_value"].append((labels, r.value))
        if r.attainment is not None:
            samples["dxpulse_rollup_attainment"].append((labels, r.attainment))
        samples["dxpulse_rollup_completeness"].append((labels, r.completeness))
    return samples


_GAUGE_HELP = {
    "dxpulse_rollup_value": "Current value of a rollup (numerator/denominator, or the sum for counts)",
    "dxpulse_rollup_attainment": "Current value of a rollup divided by its target",
    "dxpulse_rollup_completeness": "Share of the expected reporters a rollup rests on",
}


class RollupGauges(Collector):
    """The business gauges: the current rollups of the report partitions this worker owns.

    Label cardinality is bounded: only each indicator's ``periods_per_indicator`` newest periods
    are kept, so at most indicators x periods_per_indicator x scopes series per gauge and worker.
    Each worker exports only keys whose (indicator, period) report partition it is assigned, so
    several workers do not export the same figure twice (or a stale copy of it).
    """

    def __init__(
        self, periods_per_indicator: int, partitions: int, owned: Callable[[], set[int] | None]
    ) -> None:
        self.periods_per_indicator = periods_per_indicator
        self.partitions = partitions
        self.owned = owned
        self._rollups: dict[str, Rollup] = {}
        # Report partition per rollup key as actually consumed: a producer with another partitioner
        # than murmur2 places keys elsewhere.
        self._partition: dict[tuple[str, str], int] = {}
        self._live: set[tuple[str, str]] = set()
        """The (indicator, period) pairs of ``_rollups``."""
        self._lock = threading.Lock()

    def observe(self, rollups: Iterable[Rollup], partition: int | None = None) -> None:
        """Record published (or re-read) rollups; ``partition`` is the report partition they came from."""
        rollups = list(rollups)
        with self._lock:
            if partition is not None:
                for r in rollups:
                    self._partition[(r.indicator, r.period)] = partition
            # Called per processed batch: only a new (indicator, period) can push one out, so the
            # others are merged in place and the O(kept rollups) pruning runs only then.
            new_period = False
            for r in rollups:
                if supersedes(r, self._rollups.get(r.key)):
                    new_period = new_period or (r.indicator, r.period) not in self._live
                    self._rollups[r.key] = r
            if new_period:
                kept = newest_periods(self._rollups.values(), self.periods_per_indicator)
                self._rollups = {r.key: r for r in kept}
                self._live = {(r.indicator, r.period) for r in kept}
                self._partition = {k: p for k, p in self._partition.items() if k in self._live}

    def exported(self) -> list[Rollup]:
        """The rollups exported now: kept and owned by this worker (all, when ownership is unknown)."""
        owned = self.owned()
        with self._lock:
            rollups = sorted(self._rollups.values(), key=lambda r: r.key)
            partition = dict(self._partition)

        def mine(r: Rollup) -> bool:
            key = (r.indicator, r.period)
            where = partition.get(key)
            if where is None:
                where = partition_of(report_key(*key).encode(), self.partitions)
            return owned is None or where in owned

        return [r for r in rollups if mine(r)]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, samples in gauge_samples(self.exported()).items():
            family = GaugeMetricFamily(name, _GAUGE_HELP[name], labels=["indicator", "period", "scope"])
            for labels, value in samples:
                family.add_metric(list(labels), value)
            yield family


def target_text(indicator: Indicator) -> str:
    """An indicator's targets as a dashboard shows them: "100.0% by 2024-12-31", milestones joined
    by "; ", or "none"."""
    milestones = indicator.milestones
    return (
        "; ".join(f"{amount(indicator, m.value)} by {m.deadline.isoformat()}" for m in milestones) or "none"
    )


class IndicatorInfo(Collector):
    """``dxpulse_indicator_info{indicator,name,unit,target}``, 1 per catalog indicator.

    The business gauges carry indicator ids; dashboards join this on ``indicator`` to show names and
    targets (docs/design/metrics.md). One series per indicator and worker: a join takes
    ``max by (indicator, name, unit, target)`` of it, as several aggregator workers export it.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.rows = [(i.id, i.name, i.unit, target_text(i)) for i in catalog.indicators]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            INDICATOR_INFO,
            "1 per catalog indicator, labelled with its name, unit and targets",
            labels=["indicator", "name", "unit", "target"],
        )
        for row in self.rows:
            family.add_metric(list(row), 1)
        yield family


def stalled_partitions(
    since: Mapping[tuple[str, int], tuple[int | None, float]],
    lags: Iterable[PartitionLag],
    committed: Mapping[tuple[str, int], int | None],
    now: float,
    patience_s: float,
) -> tuple[dict[tuple[str, int], tuple[int | None, float]], list[tuple[str, int]]]:
    """Partitions with lag whose committed offset has not moved for ``patience_s``.

    ``since`` maps a partition to (its committed offset, when that offset was first seen); the
    new map is returned for the next call. A partition without lag is never stalled.
    """
    updated: dict[tuple[str, int], tuple[int | None, float]] = {}
    stalled: list[tuple[str, int]] = []
    for lag in lags:
        key = (lag.topic, lag.partition)
        offset = committed.get(key)
        previous = since.get(key)
        first_seen = previous[1] if previous is not None and previous[0] == offset else now
        updated[key] = (offset, first_seen)
        if lag.lag > 0 and now - first_seen >= patience_s:
            stalled.append(key)
    return updated, sorted(stalled)


def lost_heads(
    heads: Mapping[tuple[str, int], tuple[int, int]],
    accounted: Mapping[tuple[str, int], Set[int]],
) -> list[tuple[str, int]]:
    """Partitions whose next message to commit was fetched but is nowhere to be processed.

    ``heads`` maps a partition to (committed offset, fetch position); ``accounted`` to the offsets
    the worker still holds: processed but not committed, being processed, or buffered. A committed
    offset below the fetch position that is none of those was dropped: nothing will ever process
    it, so the partition must be sought back to it.
    """
    return sorted(
        key
        for key, (committed, position) in heads.items()
        if position > committed and committed not in accounted.get(key, ())
    )
