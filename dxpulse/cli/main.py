"""The ``dxpulse`` command: run the local stack, send the sample scenario, read rollups and alerts."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

import dxpulse
from dxpulse.cli.check_data import CatalogPath, RegistryPath, check_data, command_data
from dxpulse.cli.db import db_app
from dxpulse.cli.endpoints import (
    DatabaseUrl,
    IngestUrl,
    KafkaBootstrap,
    database_url,
    ingest_url,
    kafka_bootstrap,
)
from dxpulse.cli.errors import CommandGroup
from dxpulse.cli.filters import (
    IndicatorFilter,
    PeriodFilter,
    RuleFilter,
    SeverityFilter,
    checked_filters,
    checked_indicator,
    matching_alerts,
    usage_error,
)
from dxpulse.cli.history import history_app
from dxpulse.cli.ingest import register as register_ingest_commands
from dxpulse.cli.kafka_security import command_security
from dxpulse.cli.presentation import (
    alert_table,
    distinct_transitions,
    firing,
    remap_json,
    remap_table,
    rollup_table,
)
from dxpulse.cli.status import status
from dxpulse.client import send_as_reporters
from dxpulse.domain.periods import PeriodError, parse_period
from dxpulse.domain.scenario import EXPECTED_FIGURES, sample_reports
from dxpulse.kafka.subscriber import alert_events, latest_rollups
from dxpulse.postgres.token_store import temporary_tokens
from dxpulse.stack.cli import stack_app
from schemas import Report, Rollup

app = typer.Typer(cls=CommandGroup, no_args_is_help=True)
app.add_typer(stack_app, name="stack")
register_ingest_commands(app)
app.add_typer(history_app, name="history")
app.add_typer(db_app, name="db")
app.command()(status)
app.command("check-data")(check_data)
# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _show_version(shown: bool) -> None:
    if shown:
        print(f"dxpulse {dxpulse.__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True),
    ] = False,
) -> None:
    """dxpulse: the national digital-transformation scoreboard pipeline.

    Commands that reach Kafka, PostgreSQL or the ingest use the local stack running in this folder
    (dxpulse stack up) unless an option or its DXPULSE_* variable names another.
    """


async def _send_all(url: str, dsn: str, reports: list[Report]) -> list[str]:
    """Send reports with a progress bar, each with a temporary token of its reporter (revoked
    afterwards); returns one line per refused report."""
    async with temporary_tokens(dsn, (r.reporter for r in reports), "demo") as tokens:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("sending reports", total=len(reports))
            sent = await send_as_reporters(url, tokens, reports, progress=lambda n: progress.advance(task, n))
    return [
        f"{report.reporter} {report.indicator}: {outcome.reason}"
        for report, outcome in sent
        if not outcome.ok
    ]


def _settled(rollups: dict[str, Rollup], reports: list[Report]) -> bool:
    """Every (indicator, period) sent has a national rollup resting on every reporter sent."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for report in reports:
        wanted.setdefault((report.indicator, report.period), set()).add(report.reporter)
    for (indicator, period), reporters in wanted.items():
        national = rollups.get(f"{indicator}|{period}|national")
        if national is None or national.reporters_reported < len(reporters):
            return False
    return True


@app.command()
def demo(
    ingest: IngestUrl = None,
    kafka: KafkaBootstrap = None,
    database: DatabaseUrl = None,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds to wait for the rollups.")
    ] = 120.0,
) -> None:
    """Send the first-half-2024 scenario over HTTP and print the rollups read back from Kafka.

    Needs a running stack (dxpulse stack up). Each reporter sends with a token made for the demo
    (label "demo") and revoked when it is done. Sending twice is harmless: event ids are fixed,
    and the second run's reports are answered "duplicate".
    """
    security = command_security()  # before sending: wrong settings would fail only the reading
    url, dsn, bootstrap = ingest_url(ingest), database_url(database), kafka_bootstrap(kafka)
    reports = sample_reports()
    console.print(f"Sending {len(reports)} reports from 63 provinces, 22 ministries and MPS to {url}")
    refused = asyncio.run(_send_all(url, dsn, reports))
    if refused:
        console.print(f"[red]{len(refused)} refused:[/]\n" + "\n".join(refused[:20]))
        raise typer.Exit(1)
    deadline = time.monotonic() + timeout
    with console.status("waiting for the rollups on the rollup topic"):
        while True:
            rollups = asyncio.run(latest_rollups(bootstrap, security=security))
            if _settled(rollups, reports):
                break
            if time.monotonic() > deadline:
                console.print(f"[red]error:[/] rollups incomplete after {timeout:.0f} s; see .dxpulse/logs/")
                raise typer.Exit(1)
            time.sleep(1)
    console.print(rollup_table(rollups.values(), "National rollups, read from dxpulse.rollups.v1"))
    console.print("Seed 004 says:")
    for indicator, figure in EXPECTED_FIGURES.items():
        console.print(f"  {indicator}: {figure}")


@app.command()
def rollups(
    kafka: KafkaBootstrap = None,
    indicator: IndicatorFilter = None,
    period: PeriodFilter = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON rollup per line.")] = False,
    catalog_path: CatalogPath = None,
) -> None:
    """Print the current rollups, read from the compacted rollup topic."""
    checked_filters(command_data(catalog_path, None).catalog, indicator, period)
    security = command_security()
    current = [
        r
        for r in asyncio.run(latest_rollups(kafka_bootstrap(kafka), security=security)).values()
        if (indicator is None or r.indicator == indicator) and (period is None or r.period == period)
    ]
    if as_json:
        for rollup in current:
            print(rollup.model_dump_json())
    else:
        console.print(rollup_table(current))


@app.command()
def alerts(
    kafka: KafkaBootstrap = None,
    history: Annotated[
        bool, typer.Option("--history", help="Every transition, oldest first, not only what fires now.")
    ] = False,
    indicator: IndicatorFilter = None,
    period: PeriodFilter = None,
    rule: RuleFilter = None,
    severity: SeverityFilter = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON alert event per line.")] = False,
    catalog_path: CatalogPath = None,
) -> None:
    """Print the alerts firing now, or with --history every transition, read from the alerts topic.

    Each row gives the time of the transition (UTC), its status, rule, severity, indicator, period and
    scope; --indicator, --period, --rule and --severity keep only the alerts that match.
    """
    checked_filters(command_data(catalog_path, None).catalog, indicator, period)
    events = asyncio.run(alert_events(kafka_bootstrap(kafka), security=command_security()))
    shown = matching_alerts(
        distinct_transitions(events) if history else firing(events),
        indicator=indicator,
        period=period,
        rule=rule,
        severity=severity,
    )
    if as_json:
        for alert in shown:
            print(alert.model_dump_json())
    else:
        console.print(alert_table(shown, "Alert history" if history else "Firing alerts"))


@app.command()
def remap(
    indicator: Annotated[str, typer.Argument(help="Indicator id, e.g. emc_connection.")],
    period: Annotated[str, typer.Argument(help="The earlier period, e.g. 2024-H1.")],
    compare: Annotated[
        str | None, typer.Option(metavar="PERIOD", help="A later period to show beside it, e.g. 2025-H2.")
    ] = None,
    map_date: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], metavar="YYYY-MM-DD", help="Map of this day (default: today)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per unit of the map, one per line.")
    ] = False,
    database: DatabaseUrl = None,
    catalog_path: CatalogPath = None,
    registry_path: RegistryPath = None,
) -> None:
    """Show a past period's figures on today's map: 2024's 63 provinces regrouped into the 34.

    Each unit of the map gets the figure of the units it was formed from (the new Khanh Hoa is old
    56 and 58 together), with its numerator and denominator, beside its own figure for --compare.
    Reads every reporter's latest value from the PostgreSQL history, as the query API's
    /v1/figures does.
    """
    catalog, registry = command_data(catalog_path, registry_path)
    chosen = checked_indicator(catalog, indicator)
    labels = [period] if compare is None else [period, compare]
    try:
        periods = [parse_period(label, chosen.period_type) for label in labels]
    except PeriodError as error:
        raise usage_error(str(error)) from None
    day = map_date.date() if map_date is not None else datetime.now(UTC).date()
    from dxpulse.cli.remap_history import figures_on_map

    dsn = database_url(database)
    with Console(stderr=True).status("reading the latest values from PostgreSQL"):
        figures = asyncio.run(figures_on_map(dsn, chosen, periods, registry, day))
    later = figures[-1] if compare else []
    if as_json:
        for line in remap_json(figures[0], later, day):
            print(json.dumps(line))
        return
    title = f"{chosen.name}: {period} on the map of {day.isoformat()}"
    console.print(remap_table(figures[0], later, period, compare or "", title))


@app.command("export-schemas")
def export_schemas(
    out: Annotated[Path, typer.Option(help="Folder for the JSON Schema files.")] = Path("schemas/json"),
) -> None:
    """Write the JSON Schema of every event and the AsyncAPI document of every topic."""
    from dxpulse.kafka.contract import export

    for path in export(out):
        console.print(f"wrote {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
