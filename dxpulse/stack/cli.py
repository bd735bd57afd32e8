"""`dxpulse stack ...`: install, start, stop and inspect the local stack from the command line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dxpulse.stack.errors import StackError
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack

stack_app = typer.Typer(
    help="Run Kafka, PostgreSQL and the dxpulse services locally, as plain processes.",
    no_args_is_help=True,
)
_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _say(line: str) -> None:
    _out.print(escape(line))


@contextmanager
def _expected_failures() -> Iterator[None]:
    """Turn the failures a developer can fix into one line (plus context) and exit code 1."""
    try:
        yield
    except StackError as exc:
        _err.print(f"[bold red]error:[/] {escape(exc.message)}")
        if exc.details:
            _err.print(escape(exc.details), style="dim")
        raise typer.Exit(1) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        # A check across settings has no field of its own: its message names the variables.
        what = f"bad setting DXPULSE_STACK_{field.upper()}" if field else "bad settings"
        _err.print(f"[bold red]error:[/] {what}: {escape(first['msg'].removeprefix('Value error, '))}")
        raise typer.Exit(2) from None


def _with_stack(action: Callable[[Stack], None]) -> None:
    with _expected_failures():
        action(Stack(StackSettings(), report=_say))


@stack_app.command()
def install() -> None:
    """Install PostgreSQL, Prometheus and Alertmanager (apt, needs root) if missing, and cache
    the Kafka jars (Maven, once per version). Quick when everything is there."""
    _with_stack(lambda stack: stack.install())


@stack_app.command()
def up(
    services: Annotated[
        bool,
        typer.Option(
            "--services/--no-services",
            help="Also start the dxpulse services (ingest, aggregate, alerts, history, query).",
        ),
    ] = True,
) -> None:
    """Start Kafka (creating the topics) and PostgreSQL (applying migrations), then the
    services. Components already running are left alone."""

    def action(stack: Stack) -> None:
        stack.up(with_services=services)
        _print_status(stack)

    _with_stack(action)


@stack_app.command()
def down() -> None:
    """Stop the services, then PostgreSQL, then Kafka. Data is kept for the next `up`."""
    _with_stack(lambda stack: stack.down())


@stack_app.command()
def status() -> None:
    """Show each component: running or not, pid, address and log file."""
    _with_stack(_print_status)


def _print_status(stack: Stack) -> None:
    table = Table(title=f"dxpulse stack in {stack.paths.root}")
    for column in ("component", "state", "pid", "address"):
        table.add_column(column, no_wrap=True)
    table.add_column("log", overflow="fold")
    for item in stack.status():
        if not item.running:
            state = "[dim]stopped[/]"
        elif item.ready:
            state = "[green]running[/]"
        else:
            state = "[yellow]starting[/]"
        table.add_row(
            item.name,
            state,
            str(item.pid) if item.pid is not None else "-",
            item.address or "-",
            escape(str(item.log)),
        )
    _out.print(table)
