"""``dxpulse token create|revoke|list`` and ``dxpulse send FILE``: the local systems' side of ingest."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dxpulse.cli.check_data import CatalogPath, RegistryPath, command_data
from dxpulse.cli.report_files import FileItem, format_of, read_reports
from dxpulse.client import IngestClient, ItemOutcome
from dxpulse.domain.tokens import subject_error, token_id_of
from dxpulse.postgres.token_store import create_token, list_tokens, revoke_tokens
from dxpulse.stack.settings import StackSettings

T = TypeVar("T")

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)

token_app = typer.Typer(
    help="Create, revoke and list the API tokens local systems send reports with.", no_args_is_help=True
)

_stack = StackSettings()
DatabaseUrl = Annotated[
    str, typer.Option(help="PostgreSQL DSN where tokens are stored.", envvar="DXPULSE_DATABASE_URL")
]


def _with_db(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a connection; a database that cannot be reached is a clear error, not a trace."""

    async def run() -> T:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        err.print(
            f"[red]error:[/] cannot use PostgreSQL ({type(error).__name__}: {error}); start the stack"
            " (dxpulse stack up) or set DXPULSE_DATABASE_URL / --database-url"
        )
        raise typer.Exit(1) from None


@token_app.command("create")
def token_create(
    reporter: Annotated[
        str, typer.Argument(help="Reporter id the token may report as, e.g. province:79, or national:*.")
    ],
    label: Annotated[str, typer.Option(help="A note for the list, e.g. the vendor's name.")] = "",
    database_url: DatabaseUrl = _stack.database_url,
    catalog_path: CatalogPath = None,
    registry_path: RegistryPath = None,
) -> None:
    """Create a token for one reporter and print it once (only its hash is stored)."""
    problem = subject_error(reporter, command_data(catalog_path, registry_path).registry)
    if problem is not None:
        err.print(f"[red]error:[/] {problem}")
        raise typer.Exit(2)
    minted = _with_db(database_url, lambda conn: create_token(conn, reporter, label))
    err.print(f"token {minted.token_id} for {reporter}; store it now, it cannot be shown again:")
    # Alone on stdout, so scripts can capture it: TOKEN=$(dxpulse token create province:79)
    print(minted.secret)


@token_app.command("revoke")
def token_revoke(
    tokens: Annotated[list[str], typer.Argument(help="Token ids (from `dxpulse token list`) or tokens.")],
    database_url: DatabaseUrl = _stack.database_url,
) -> None:
    """Revoke tokens; the ingest refuses them within DXPULSE_TOKEN_CACHE_TTL_S (10 s by default)."""
    ids = [token_id_of(t) or t for t in tokens]
    revoked = _with_db(database_url, lambda conn: revoke_tokens(conn, ids))
    for token_id in ids:
        console.print(f"{token_id}: {'revoked' if token_id in revoked else 'no live token with this id'}")
    if len(revoked) < len(set(ids)):
        raise typer.Exit(1)


@token_app.command("list")
def token_list(
    reporter: Annotated[str | None, typer.Option(help="Only this reporter's tokens.")] = None,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    database_url: DatabaseUrl = _stack.database_url,
) -> None:
    """List tokens (ids, reporters, labels, dates; never the tokens themselves)."""
    infos = _with_db(database_url, lambda conn: list_tokens(conn, reporter, include_revoked=include_revoked))
    table = Table("id", "reporter", "label", "created", "revoked", title="API tokens")
    for info in infos:
        revoked = info.revoked_at.isoformat(timespec="seconds") if info.revoked_at else ""
        table.add_row(
            info.token_id, info.subject, info.label, info.created_at.isoformat(timespec="seconds"), revoked
        )
    console.print(table)


def _summary(items: list[FileItem], outcomes: list[ItemOutcome], show: int) -> int:
    """Print the counts and the refused reports with their reasons; returns how many failed."""
    counts = Counter(o.status for o in outcomes)
    local = [i for i in items if i.error is not None]
    failed: list[tuple[int, str | None, str]] = [(i.line, None, i.error or "") for i in local]
    sent = [i for i in items if i.error is None]
    failed += [(item.line, o.event_id, o.reason) for item, o in zip(sent, outcomes, strict=True) if not o.ok]
    console.print(
        f"{counts['accepted']} accepted, {counts['duplicate']} duplicate (sent before),"
        f" {len(failed)} not accepted"
    )
    if failed:
        table = Table("line", "event id", "reason", title="Not accepted", show_lines=False)
        for line, event_id, reason in sorted(failed)[:show]:
            table.add_row(str(line), event_id or "", reason)
        console.print(table)
        if len(failed) > show:
            console.print(f"... and {len(failed) - show} more (--show {len(failed)} lists them all)")
        by_reason = Counter(reason.split(":", 1)[0] for _, _, reason in failed)
        console.print("by reason: " + ", ".join(f"{r} {n}" for r, n in by_reason.most_common()))
    return len(failed)


def send(
    file: Annotated[
        Path, typer.Argument(help="Reports as CSV (header row) or JSON lines.", exists=True, dir_okay=False)
    ],
    token: Annotated[
        str,
        typer.Option(
            help="Your API token (dxpulse token create).", envvar="DXPULSE_TOKEN", show_default=False
        ),
    ],
    ingest_url: Annotated[
        str, typer.Option(help="Base URL of the ingest API.", envvar="DXPULSE_INGEST_URL")
    ] = f"http://127.0.0.1:{_stack.ingest_port}",
    file_format: Annotated[
        Literal["csv", "jsonl"] | None,
        typer.Option("--format", help="csv or jsonl; by default from the file name (.csv, else jsonl)."),
    ] = None,
    show: Annotated[int, typer.Option(help="How many refused reports to list.")] = 20,
) -> None:
    """Send a file of reports in batches of 500, with a progress bar and a summary of what was refused.

    CSV columns: event_id (optional: derived from the report, so a resend is idempotent), reporter,
    indicator, period, observed_at, kind (flag|ratio|count|catalog), value (flag, count),
    numerator and denominator (ratio), done (catalog items separated by ';').
    JSON lines: one report object per line, as for POST /v1/reports.
    Exits 1 when any report was not accepted.
    """
    items = read_reports(file.read_text(encoding="utf-8"), file_format or format_of(file.name))
    payloads = [i.report for i in items if i.report is not None]

    async def run() -> list[ItemOutcome]:
        columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("send", total=len(payloads))
            async with IngestClient(ingest_url, token=token) as client:
                return await client.send_all(payloads, progress=lambda n: progress.advance(task, n))

    try:
        outcomes = asyncio.run(run())
    except (OSError, httpx.TransportError) as error:  # httpx's connect and read errors are not OSErrors
        err.print(
            f"[red]error:[/] cannot reach {ingest_url} ({type(error).__name__}: {error}); check --ingest-url"
            " (DXPULSE_INGEST_URL) and that the ingest is running"
        )
        raise typer.Exit(1) from None
    if _summary(items, outcomes, show):
        if any(o.reason.split(":", 1)[0] == "unauthorized" for o in outcomes):
            err.print(
                "[red]error:[/] the ingest refused the token, so the rest of the file was not sent;"
                " check --token (DXPULSE_TOKEN), or ask an operator for a new one"
                " (dxpulse token create <reporter>)"
            )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ingest commands to the ``dxpulse`` command."""
    app.add_typer(token_app, name="token")
    app.command("send")(send)
