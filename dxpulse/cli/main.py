"""The ``dxpulse`` command: run the local stack, send the sample scenario, read rollups and alerts."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from dxpulse.cli.check_data import CatalogPath, RegistryPath, check_data, command_data
from dxpulse.cli.db import db_app
from dxpulse.cli.history import history_app
from dxpulse.cli.ingest import register as register_ingest_commands
from dxpulse.cli.kafka_security import command_security
from dxpulse.cli.presentation import alert_table, distinct_transitions, firing, remap_table, rollup_table
from dxpulse.cli.status import status
from dxpulse.client import send_as_reporters
from dxpulse.domain.periods import parse_period
from dxpulse.domain.remap import latest_snapshots, on_map_of
from dxpulse.domain.scenario import EXPECTED_FIGURES, sample_reports
from dxpulse.kafka.subscriber import alert_events, latest_rollups, valid_reports
from dxpulse.postgres.token_store import temporary_tokens
from dxpulse.stack.cli import stack_app
from dxpulse.stack.settings import StackSettings
from schemas import Report, Rollup

app = typer.Typer(
    help="dxpulse: the national digital-transformation scoreboard pipeline.", no_args_is_help=True
)
app.add_typer(stack_app, name="stack")
register_ingest_commands(app)
app.add_typer(history_app, name="history")
app.add_typer(db_app, name="db")
app.command()(status)
app.command("check-data")(check_data)
# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

_stack = StackSettings()
IngestUrl = Annotated[str, typer.Option(help="Base URL of the ingest API.", envvar="DXPULSE_INGEST_URL")]
Bootstrap = Annotated[str, typer.Option(help="Kafka bootstrap servers.", envvar="DXPULSE_KAFKA_BOOTSTRAP")]
DEFAULT_INGEST_URL = f"http://127.0.0.1:{_stack.ingest_port}"
DEFAULT_BOOTSTRAP = _stack.kafka_bootstrap
DatabaseUrl = Annotated[str, typer.Option(help="PostgreSQL DSN (API tokens).", envvar="DXPULSE_DATABASE_URL")]


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
    ingest_url: IngestUrl = DEFAULT_INGEST_URL,
    kafka_bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    database_url: DatabaseUrl = _stack.database_url,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the rollups.")] = 120.0,
) -> None:
    """Send the first-half-2024 scenario over HTTP and print the rollups read back from Kafka.

    Needs a running stack (dxpulse stack up). Each reporter sends with a token made for the demo
    (label "demo") and revoked when it is done. Sending twice is harmless: event ids are fixed,
    and the second run's reports are answered "duplicate".
    """
    security = command_security()  # before sending: wrong settings would fail only the reading
    reports = sample_reports()
    console.print(f"Sending {len(reports)} reports from 63 provinces, 22 ministries and MPS to {ingest_url}")
    try:
        refused = asyncio.run(_send_all(ingest_url, database_url, reports))
    except OSError as error:
        console.print(
            f"[red]error:[/] cannot reach {ingest_url} or PostgreSQL ({error});"
            " start them with: dxpulse stack up"
        )
        raise typer.Exit(1) from None
    if refused:
        console.print(f"[red]{len(refused)} refused:[/]\n" + "\n".join(refused[:20]))
        raise typer.Exit(1)
    deadline = time.monotonic() + timeout
    with console.status("waiting for the rollups on the rollup topic"):
        while True:
            rollups = asyncio.run(latest_rollups(kafka_bootstrap, security=security))
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
    kafka_bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    indicator: Annotated[str | None, typer.Option(help="Only this indicator.")] = None,
    period: Annotated[str | None, typer.Option(help="Only this period, e.g. 2024-H1.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON rollup per line.")] = False,
) -> None:
    """Print the current rollups, read from the compacted rollup topic."""
    security = command_security()
    current = [
        r
        for r in asyncio.run(latest_rollups(kafka_bootstrap, security=security)).values()
        if (indicator is None or r.indicator == indicator) and (period is None or r.period == period)
    ]
    if as_json:
        for rollup in current:
            print(rollup.model_dump_json())
    else:
        console.print(rollup_table(current))


@app.command()
def alerts(
    kafka_bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    history: Annotated[bool, typer.Option(help="Every transition, not only what fires now.")] = False,
) -> None:
    """Print the alerts firing now (or their whole history), read from the alerts topic."""
    events = asyncio.run(alert_events(kafka_bootstrap, security=command_security()))
    shown = distinct_transitions(events) if history else firing(events)
    console.print(alert_table(shown, "Alert history" if history else "Firing alerts"))


@app.command()
def remap(
    indicator: Annotated[str, typer.Argument(help="Indicator id, e.g. emc_connection.")],
    period: Annotated[str, typer.Argument(help="The earlier period, e.g. 2024-H1.")],
    compare: Annotated[
        str | None, typer.Option(help="A later period to show beside it, e.g. 2025-H2.")
    ] = None,
    map_date: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Map of this day (default: today).")
    ] = None,
    kafka_bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    catalog_path: CatalogPath = None,
    registry_path: RegistryPath = None,
) -> None:
    """Show a past period's figures on today's map: 2024's 63 provinces regrouped into the 34.

    Each unit of the map gets the figure of the units it was formed from (the new Khanh Hoa is old
    56 and 58 together), beside its own figure for --compare. Reads the raw report topic.
    """
    catalog, registry = command_data(catalog_path, registry_path)
    chosen = catalog.get(indicator)
    if chosen is None:
        known = ", ".join(i.id for i in catalog.indicators)
        console.print(f"[red]error:[/] unknown indicator {indicator!r}; known: {known}")
        raise typer.Exit(2)
    labels = [period] if compare is None else [period, compare]
    try:
        periods = [parse_period(label, chosen.period_type) for label in labels]
    except ValueError as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    day = map_date.date() if map_date is not None else datetime.now(UTC).date()
    security = command_security()
    with console.status("reading reports from dxpulse.reports.v1"):
        reports = asyncio.run(valid_reports(kafka_bootstrap, catalog, registry, security=security))
    now = datetime.now(UTC)
    figures = [
        on_map_of(
            chosen,
            p,
            latest_snapshots(r for r in reports if r.indicator == indicator and r.period == p.label),
            registry,
            day,
            now,
        )
        for p in periods
    ]
    title = f"{chosen.name}: {period} on the map of {day.isoformat()}"
    console.print(remap_table(figures[0], figures[-1] if compare else [], period, compare or "", title))


@app.command("export-schemas")
def export_schemas(
    out: Annotated[Path, typer.Option(help="Folder for the JSON Schema files.")] = Path("schemas/json"),
) -> None:
    """Write the JSON Schema of every event (for producers and subscribers in other languages)."""
    from schemas.export import export

    for path in export(out):
        console.print(f"wrote {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
