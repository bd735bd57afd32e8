"""``dxpulse db migrate``: apply the database migrations the services need, before they start."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import asyncpg
import typer
from rich.console import Console

from dxpulse.cli.endpoints import DatabaseUrl, database_url, without_password
from dxpulse.cli.errors import CONNECTION_ERRORS, one_line
from dxpulse.postgres.migrations import apply_migrations, migration_files

db_app = typer.Typer(help="The PostgreSQL database the services share.", no_args_is_help=True)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@db_app.command()
def migrate(
    database: DatabaseUrl = None,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds to wait for a connection.")
    ] = 10.0,
    as_json: Annotated[
        bool, typer.Option("--json", help='One JSON object: {"applied": [...], "migrations": [...]}.')
    ] = False,
) -> None:
    """Apply the migrations the database lacks (dxpulse/postgres/migrations/), then exit.

    Run it before the services of a new release start: they apply none themselves unless
    DXPULSE_MIGRATE_AT_START is true, and wait until this has run. Safe to run again, or beside
    another run: each migration applies once, under an advisory lock. Exits 1 with one line on
    stderr when PostgreSQL cannot be reached or a migration fails (that migration is rolled back).
    """
    dsn = database_url(database)
    try:
        applied = asyncio.run(apply_migrations(dsn, timeout_s=timeout))
    except CONNECTION_ERRORS:
        raise  # the command group says which server could not be reached
    except asyncpg.PostgresError as error:
        err.print(
            f"error: migrating PostgreSQL at {without_password(dsn)} failed ({one_line(error)})",
            soft_wrap=True,
            markup=False,
        )
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"applied": applied, "migrations": [name for name, _ in migration_files()]}))
    elif applied:
        console.print(f"applied {len(applied)} migrations: {', '.join(applied)}", soft_wrap=True)
    else:
        console.print(f"up to date: all {len(migration_files())} migrations applied", soft_wrap=True)
