"""``dxpulse db migrate``: apply the database migrations the services need, before they start."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated
from urllib.parse import urlsplit

import asyncpg
import typer
from rich.console import Console

from dxpulse.postgres.migrations import apply_migrations, migration_files
from dxpulse.postgres.retry import POSTGRES_UNREACHABLE
from dxpulse.stack.settings import StackSettings

db_app = typer.Typer(help="The PostgreSQL database the services share.", no_args_is_help=True)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

CANNOT_CONNECT: tuple[type[BaseException], ...] = (
    *POSTGRES_UNREACHABLE,
    asyncpg.InvalidAuthorizationSpecificationError,  # class 28: wrong user or password
    asyncpg.InvalidCatalogNameError,  # the database does not exist
)
"""Errors that mean the command never got a working connection, as opposed to a migration failing."""


def where(dsn: str) -> str:
    """``user@host:port/database`` of a DSN, never its password, for messages."""
    parts = urlsplit(dsn)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{user}{parts.hostname or 'localhost'}{port}{parts.path}"


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


@db_app.command()
def migrate(
    database_url: Annotated[
        str, typer.Option(help="PostgreSQL DSN of the services' database.", envvar="DXPULSE_DATABASE_URL")
    ] = StackSettings().database_url,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a connection.")] = 10.0,
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
    try:
        applied = asyncio.run(apply_migrations(database_url, timeout_s=timeout))
    except CANNOT_CONNECT as error:
        err.print(
            f"error: cannot reach PostgreSQL at {where(database_url)} ({_one_line(error)});"
            " check DXPULSE_DATABASE_URL / --database-url",
            soft_wrap=True,
            markup=False,
        )
        raise typer.Exit(1) from None
    except asyncpg.PostgresError as error:
        err.print(
            f"error: migrating PostgreSQL at {where(database_url)} failed ({_one_line(error)})",
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
