"""``dxpulse history``: rebuild or complete the PostgreSQL rollup history from the rollup topic."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import Progress

from dxpulse.stack.settings import StackSettings

history_app = typer.Typer(help="PostgreSQL history of the rollups.", no_args_is_help=True)
console = Console(highlight=False)
_stack = StackSettings()


@history_app.command()
def replay(
    kafka_bootstrap: Annotated[
        str, typer.Option(help="Kafka bootstrap servers.", envvar="DXPULSE_KAFKA_BOOTSTRAP")
    ] = _stack.kafka_bootstrap,
    database_url: Annotated[
        str, typer.Option(help="PostgreSQL DSN of the history.", envvar="DXPULSE_DATABASE_URL")
    ] = _stack.database_url,
) -> None:
    """Write the rollup topic, from its first offset, into rollup_history.

    Safe to run at any time, beside the running history writer: rows already written are recognised by
    their topic offset and skipped, so a complete history gets no new row. Use it to build history
    in a new database, or to fill it after the history writer (`python -m services.history`) was off.
    """
    from dxpulse.cli.kafka_security import command_security
    from services.history.core import replay_rollups

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("reading dxpulse.rollups.v1", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, description="writing history", completed=done, total=total)

        try:
            replay = replay_rollups(
                kafka_bootstrap, database_url, progress=advance, security=command_security()
            )
            read, added = asyncio.run(replay)
        except KafkaError as error:
            console.print(
                f"[red]error:[/] cannot read Kafka at {kafka_bootstrap} ({error}); is the stack up?"
            )
            raise typer.Exit(1) from None
        except OSError as error:
            console.print(f"[red]error:[/] cannot reach PostgreSQL ({error}); check --database-url")
            raise typer.Exit(1) from None
    console.print(f"read {read} rollup messages; added {added} revisions to rollup_history")
