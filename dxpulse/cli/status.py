"""``dxpulse status``: the national rollups and the firing alerts, as an operator on call wants them."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.console import Console

from dxpulse.cli.check_data import CatalogPath, command_data
from dxpulse.cli.endpoints import KafkaBootstrap, kafka_bootstrap
from dxpulse.cli.filters import PeriodFilter, checked_filters
from dxpulse.cli.kafka_security import command_security
from dxpulse.cli.presentation import alert_table, firing, rollup_table
from dxpulse.kafka.subscriber import alert_events, latest_rollups
from schemas import AlertEvent, Rollup

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def by_severity(alerts: Iterable[AlertEvent]) -> list[AlertEvent]:
    """Critical first, then warning and info; the oldest first within a severity."""
    return sorted(alerts, key=lambda a: (_SEVERITY_ORDER.get(a.severity, 9), a.starts_at, a.fingerprint))


def summary(rollups: Iterable[Rollup], alerts: Iterable[AlertEvent]) -> str:
    """One line: how many figures, how fresh, and how many alerts fire at which severity."""
    rollups, alerts = list(rollups), list(alerts)
    figures = {(r.indicator, r.period) for r in rollups}
    newest = max((r.computed_at for r in rollups), default=None)
    counts = {s: sum(1 for a in alerts if a.severity == s) for s in _SEVERITY_ORDER}
    fired = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
    fresh = f", newest computed {newest:%Y-%m-%d %H:%M:%S} UTC" if newest else ""
    return f"{len(figures)} figures{fresh}; {len(alerts)} alerts firing ({fired})"


def status_document(rollups: list[Rollup], alerts: list[AlertEvent]) -> dict[str, Any]:
    """``status --json``: the rollups and firing alerts as their topics carry them, and the summary."""
    return {
        "rollups": [r.model_dump(mode="json") for r in rollups],
        "alerts": [a.model_dump(mode="json") for a in alerts],
        "summary": summary(rollups, alerts),
    }


def status(
    kafka: KafkaBootstrap = None,
    period: PeriodFilter = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='One JSON object: {"rollups": [...], "alerts": [...], "summary": "..."}.'
        ),
    ] = False,
    catalog_path: CatalogPath = None,
) -> None:
    """Print the national rollups and the alerts firing now, both read from Kafka.

    Both come from the topics the pipeline itself publishes (rollups and alerts), so this works
    whenever Kafka does, shows figures the moment the aggregator publishes them, and does not depend
    on PostgreSQL or the query API being up.
    """
    checked_filters(command_data(catalog_path, None).catalog, None, period)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    security = command_security()
    bootstrap = kafka_bootstrap(kafka)

    async def read() -> tuple[list[Rollup], list[AlertEvent]]:
        current = await latest_rollups(bootstrap, security=security)
        events = await alert_events(bootstrap, security=security)
        return list(current.values()), by_severity(firing(events))

    with Console(stderr=True).status(f"reading rollups and alerts from {bootstrap}"):
        rollups, alerts = asyncio.run(read())
    if period is not None:
        rollups = [r for r in rollups if r.period == period]
        alerts = [a for a in alerts if a.period == period]
    if as_json:
        print(json.dumps(status_document(rollups, alerts)))
        return
    console.print(rollup_table(rollups, "National rollups (dxpulse.rollups.v1)"))
    console.print(alert_table(alerts, "Firing alerts (dxpulse.alerts.v1)"))
    console.print(summary(rollups, alerts))
