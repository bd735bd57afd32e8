"""``dxpulse history``: rebuild or complete the PostgreSQL rollup history from the rollup topic."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.progress import Progress

from dxpulse.cli.endpoints import DatabaseUrl, KafkaBootstrap, database_url, kafka_bootstrap

history_app = typer.Typer(help="PostgreSQL history of the rollups.", no_args_is_help=True)
console = Console(highlight=False)


@history_app.command()
def replay(kafka: KafkaBootstrap = None, database: DatabaseUrl = None) -> None:
    """Write the rollup topic, from its first offset, into rollup_history.

    Safe to run at any time, beside the running history writer: rows already written are recognised by
    their topic offset and skipped, so a complete history gets no new row. Use it to build history
    in a new database, or to fill it after the history writer (`python -m services.history`) was off.
    """
    from dxpulse.cli.kafka_security import command_security
    from services.history.core import replay_rollups

    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("reading dxpulse.rollups.v1", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, description="writing history", completed=done, total=total)

        replay = replay_rollups(
            kafka_bootstrap(kafka), database_url(database), progress=advance, security=command_security()
        )
        read, added = asyncio.run(replay)
    console.print(f"read {read} rollup messages; added {added} revisions to rollup_history")
