"""``dxpulse token create|revoke|list`` and ``dxpulse send FILE``: the local systems' side of ingest."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dxpulse.cli.check_data import CatalogPath, RegistryPath, command_data
from dxpulse.cli.endpoints import DatabaseUrl, IngestUrl, database_url, ingest_url
from dxpulse.cli.filters import USAGE_EXIT, usage_error
from dxpulse.cli.report_files import FileItem, format_of, read_reports
from dxpulse.client import IngestClient, ItemOutcome
from dxpulse.domain.registry import Registry
from dxpulse.domain.tokens import subject_error, token_id_of
from dxpulse.postgres.token_store import create_tokens, list_tokens, revoke_tokens

T = TypeVar("T")

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)

token_app = typer.Typer(
    help="Create, revoke and list the API tokens local systems send reports with.", no_args_is_help=True
)


def _with_db(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on one connection (a failure to connect is the command group's one line)."""

    async def run() -> T:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def reporters_of(text: str) -> list[tuple[int, str]]:
    """(line number, reporter id) of each line of a reporters file; blank lines and ``#`` comments
    are skipped."""
    lines = ((number, line.split("#", 1)[0].strip()) for number, line in enumerate(text.splitlines(), 1))
    return [(number, reporter) for number, reporter in lines if reporter]


def _reporters(reporter: str | None, from_file: Path | None, registry: Registry) -> list[str]:
    """The reporters to make tokens for, each once; any unknown one ends the command (exit 2)."""
    if (reporter is None) == (from_file is None):
        raise usage_error("give one reporter, or --from-file with one reporter per line")
    if reporter is not None:
        lines = [(0, reporter)]
    else:
        assert from_file is not None
        lines = reporters_of(from_file.read_text(encoding="utf-8"))
        if not lines:
            raise usage_error(f"{from_file} names no reporter")
    problems = [(number, subject_error(subject, registry)) for number, subject in lines]
    if any(problem for _, problem in problems):
        console = Console(stderr=True, highlight=False, soft_wrap=True)
        for number, problem in problems:
            if problem is not None:
                where = f"{from_file}:{number}: " if from_file is not None else ""
                console.print(f"error: {where}{problem}", markup=False)
        raise typer.Exit(USAGE_EXIT)
    return list(dict.fromkeys(subject for _, subject in lines))


@token_app.command("create")
def token_create(
    reporter: Annotated[
        str | None,
        typer.Argument(
            help="Reporter id the token may report as, e.g. province:79, or national:*.", show_default=False
        ),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            metavar="FILE",
            help="A token for each reporter of this file: one id per line, # starts a comment.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    label: Annotated[
        str, typer.Option(metavar="TEXT", help="A note for the list, e.g. the vendor's name.")
    ] = "",
    as_json: Annotated[
        bool, typer.Option("--json", help='One {"reporter", "token_id", "token"} object per line.')
    ] = False,
    database: DatabaseUrl = None,
    catalog_path: CatalogPath = None,
    registry_path: RegistryPath = None,
) -> None:
    """Create a token for a reporter, or one for each reporter of a file, and print each once.

    Only the tokens' hashes are stored. With one reporter the token is alone on stdout, so scripts
    can capture it: TOKEN=$(dxpulse token create province:79). With --from-file every token is made
    in one transaction (all or none) and printed as one "reporter token" line each.
    """
    registry = command_data(catalog_path, registry_path).registry
    subjects = _reporters(reporter, from_file, registry)
    minted = _with_db(database_url(database), lambda conn: create_tokens(conn, subjects, label))
    if as_json:
        for subject, token in minted.items():
            print(json.dumps({"reporter": subject, "token_id": token.token_id, "token": token.secret}))
    elif reporter is not None:
        token = minted[reporter]
        err.print(f"token {token.token_id} for {reporter}; store it now, it cannot be shown again:")
        print(token.secret)
    else:
        err.print(f"{len(minted)} tokens; store them now, they cannot be shown again:")
        for subject, token in minted.items():
            print(f"{subject}\t{token.secret}")


@token_app.command("revoke")
def token_revoke(
    tokens: Annotated[list[str], typer.Argument(help="Token ids (from `dxpulse token list`) or tokens.")],
    database: DatabaseUrl = None,
) -> None:
    """Revoke tokens; the ingest refuses them within DXPULSE_TOKEN_CACHE_TTL_S (10 s by default)."""
    ids = [token_id_of(t) or t for t in tokens]
    revoked = _with_db(database_url(database), lambda conn: revoke_tokens(conn, ids))
    for token_id in ids:
        console.print(f"{token_id}: {'revoked' if token_id in revoked else 'no live token with this id'}")
    if len(revoked) < len(set(ids)):
        raise typer.Exit(1)


@token_app.command("list")
def token_list(
    reporter: Annotated[
        str | None, typer.Option(metavar="REPORTER", help="Only this reporter's tokens.")
    ] = None,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="One JSON object per token (token_id, reporter, label, created_at, revoked_at)."
        ),
    ] = False,
    database: DatabaseUrl = None,
) -> None:
    """List tokens (ids, reporters, labels, dates; never the tokens themselves)."""
    dsn = database_url(database)
    infos = _with_db(dsn, lambda conn: list_tokens(conn, reporter, include_revoked=include_revoked))
    if as_json:
        for info in infos:
            fields = {
                "token_id": info.token_id,
                "reporter": info.subject,
                "label": info.label,
                "created_at": info.created_at.isoformat(),
                "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
            }
            print(json.dumps(fields))
        return
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
    ingest: IngestUrl = None,
    file_format: Annotated[
        Literal["csv", "jsonl"] | None,
        typer.Option("--format", help="csv or jsonl; by default from the file name (.csv, else jsonl)."),
    ] = None,
    show: Annotated[int, typer.Option(metavar="N", help="How many refused reports to list.")] = 20,
) -> None:
    """Send a file of reports in batches of 500, with a progress bar and a summary of what was refused.

    CSV columns: event_id (optional: derived from the report, so a resend is idempotent), reporter,
    indicator, period, observed_at, kind (flag|ratio|count|catalog), value (flag, count),
    numerator and denominator (ratio), done (catalog items separated by ';').
    JSON lines: one report object per line, as for POST /v1/reports.
    Exits 1 when any report was not accepted.
    """
    url = ingest_url(ingest)
    items = read_reports(file.read_text(encoding="utf-8"), file_format or format_of(file.name))
    payloads = [i.report for i in items if i.report is not None]

    async def run() -> list[ItemOutcome]:
        columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("send", total=len(payloads))
            async with IngestClient(url, token=token) as client:
                return await client.send_all(payloads, progress=lambda n: progress.advance(task, n))

    outcomes = asyncio.run(run())
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
