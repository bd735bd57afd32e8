"""`dxpulse stack ...`: install, start, stop and inspect the local stack from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dxpulse.stack.errors import StackError
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import ComponentStatus, Stack

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


NOT_RUNNING_EXIT = 3
"""The exit code of ``stack status`` when a component ``up`` starts is not running and ready."""


@stack_app.command()
def status(
    as_json: Annotated[
        bool,
        typer.Option("--json", help="One JSON object per component (name, state, pid, address, log)."),
    ] = False,
) -> None:
    """Show each component: running or not, pid, address and log file.

    Exits 3 when a component that `up` starts is not running and ready, so scripts can wait on it.
    """

    def action(stack: Stack) -> None:
        items = stack.status()
        if as_json:
            for item in items:
                print(json.dumps(_as_json(item)))
        else:
            _print_table(stack, items)
        wanted = stack.components_up_starts()
        if any(item.name in wanted and not item.ready for item in items):
            raise typer.Exit(NOT_RUNNING_EXIT)

    _with_stack(action)


def _state(item: ComponentStatus) -> str:
    if not item.running:
        return "stopped"
    return "running" if item.ready else "starting"


def _as_json(item: ComponentStatus) -> dict[str, object]:
    return {
        "name": item.name,
        "state": _state(item),
        "pid": item.pid,
        "address": item.address,
        "log": str(item.log),
    }


_STATE_STYLES = {"stopped": "dim", "running": "green", "starting": "yellow"}


def _print_status(stack: Stack) -> None:
    _print_table(stack, stack.status())


def _print_table(stack: Stack, items: Sequence[ComponentStatus]) -> None:
    table = Table(title=f"dxpulse stack in {stack.paths.root}")
    for column in ("component", "state", "pid", "address"):
        table.add_column(column, no_wrap=True)
    table.add_column("log", overflow="fold")
    for item in items:
        state = _state(item)
        table.add_row(
            item.name,
            f"[{_STATE_STYLES[state]}]{state}[/]",
            str(item.pid) if item.pid is not None else "-",
            item.address or "-",
            escape(str(item.log)),
        )
    _out.print(table)
