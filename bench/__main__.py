"""``python -m bench``: run the benchmark suite on a throwaway local stack (or a given Kafka)."""

from __future__ import annotations

import asyncio
import enum
import logging
import platform
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.peer_scenarios import peers, replay
from bench.results import Figure, figure_table, markdown
from bench.scenarios import (
    Bench,
    aggregator,
    end_to_end_latency,
    history_writer,
    ingest_throughput,
)
from bench.synthetic import SIZES
from dxpulse.gc_tuning import tune_gc
from dxpulse.settings import ServiceSettings
from dxpulse.stack.testing import running_stack


class Scenario(enum.StrEnum):
    aggregator = "aggregator"
    ingest = "ingest"
    latency = "latency"
    history = "history"
    peers = "peers"
    replay = "replay"


class SizeName(enum.StrEnum):
    tiny = "tiny"
    small = "small"
    full = "full"


app = typer.Typer(add_completion=False)
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def machine() -> str:
    """Cores, memory and CPU model from /proc, for the record beside the figures."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "?"
    )
    cores = cpuinfo.count("processor\t:")
    meminfo = {ln.split(":")[0]: ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()}
    memory_gib = int(meminfo["MemTotal"]) / 2**20
    load = Path("/proc/loadavg").read_text().split()[:3]
    return (
        f"{cores} cores ({model}), {memory_gib:.1f} GiB memory, Python {platform.python_version()},"
        f" load average {' '.join(load)} at start"
    )


@contextmanager
def servers(bootstrap: str | None, database_url: str | None, work_dir: Path) -> Iterator[tuple[str, str]]:
    """The given Kafka and PostgreSQL, or a throwaway local stack of both on free ports in work_dir."""
    if bootstrap and database_url:
        yield bootstrap, database_url
        return
    if bootstrap or database_url:
        raise typer.BadParameter("give both --kafka and --database-url, or neither (a throwaway stack)")
    with running_stack(work_dir, report=lambda line: console.print(f"[dim]stack: {line}[/]")) as settings:
        yield settings.kafka_bootstrap, settings.database_url


async def run_suite(bench: Bench, scenarios: list[Scenario], rate: float | None) -> None:
    # Ingest before latency: the latency scenario caps its rate at what ingest sustained. The peers
    # read the aggregator scenario's reports and stand beside its figures, so it runs first.
    if Scenario.peers in scenarios and Scenario.aggregator not in scenarios:
        scenarios = [*scenarios, Scenario.aggregator]
    order = [
        *(Scenario.ingest, Scenario.latency, Scenario.aggregator),
        *(Scenario.peers, Scenario.replay, Scenario.history),
    ]
    for scenario in (s for s in order if s in scenarios):
        console.rule(f"{scenario.value} ({bench.size.name})")
        if scenario is Scenario.aggregator:
            await aggregator(bench)  # throughput, then memory and recovery of the same worker
        elif scenario is Scenario.peers:
            await peers(bench)
        elif scenario is Scenario.replay:
            await replay(bench)
        elif scenario is Scenario.ingest:
            await ingest_throughput(bench)
        elif scenario is Scenario.history:
            await history_writer(bench)
        else:
            await end_to_end_latency(bench, rate)


@app.command()
def main(
    size: Annotated[
        SizeName, typer.Option(help="tiny (a smoke run), small, or full (the figures).")
    ] = SizeName.small,
    scenario: Annotated[
        list[Scenario] | None,
        typer.Option("--scenario", "-s", help="Run only these (repeatable); all by default."),
    ] = None,
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option("--kafka", help="Use this Kafka (host:port) instead of starting a throwaway stack."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="With --kafka: the PostgreSQL DSN the ingest app uses (tokens are minted there)."),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Reports/s of the latency scenario (default: the size's, capped by measured ingest)."
        ),
    ] = None,
    markdown_out: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the figures as a Markdown table here.")
    ] = None,
    profile: Annotated[
        bool, typer.Option(help="Sample the services' processes with py-spy (dev extra).")
    ] = False,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Where stack data and process logs go (a temporary folder by default)."),
    ] = None,
) -> None:
    """Benchmark dxpulse against raw aiokafka on the same topics: aggregator, ingest and history
    writer throughput, end-to-end latency, recovery after a restart, and memory per 100,000
    reporter-keys; then the same rollup job as Kafka Streams and Quix Streams applications (built
    once with Maven and pip into the stack's cache folder), and a rebuild of every rollup from the
    log by a new aggregator.

    Each figure is printed beside a baseline measured in the same run, with the ratio and the target
    of BENCHMARKS.md. Needs the local stack's prerequisites (Java and the Kafka jars, PostgreSQL):
    see docs/guide/developers.md.
    """
    # aiokafka logs errors while Kafka creates __consumer_offsets on first use, and retries by itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    chosen = list(scenario or list(Scenario))
    folder = Path(tempfile.mkdtemp(prefix="dxpulse-bench-")) if work_dir is None else work_dir
    folder.mkdir(parents=True, exist_ok=True)
    the_size = SIZES[size.value]
    description = machine()
    console.print(f"machine: {description}")
    console.print(
        f"size {the_size.name}: {the_size.indicators} indicators x {the_size.periods} periods,"
        f" {the_size.districts} districts + {the_size.ministries} ministries"
        f" = {the_size.reporter_keys:,} reporter-keys; logs in {folder}"
    )
    figures: list[Figure] = []
    # The raw baselines run in this process: the services' collector settings here too, so a ratio
    # does not credit dxpulse with a setting the raw clients lack (this process holds the workload).
    tune_gc(ServiceSettings().gc_thresholds)
    with servers(kafka_bootstrap, database_url, folder / "stack") as (bootstrap, dsn):
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            bench = Bench(bootstrap, dsn, the_size, folder, progress, profile=profile)
            try:
                asyncio.run(run_suite(bench, chosen, rate))
            finally:
                figures = bench.figures
    console.print(figure_table(figures, f"dxpulse benchmarks, size {the_size.name}"))
    if markdown_out is not None:
        markdown_out.write_text(f"Machine: {description}\n\n" + markdown(figures))
        console.print(f"wrote {markdown_out}")


if __name__ == "__main__":
    app()
