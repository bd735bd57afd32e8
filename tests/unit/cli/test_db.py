"""``dxpulse db migrate``: its output, and one line of error when PostgreSQL cannot be used."""

from __future__ import annotations

import json

import asyncpg
import pytest
from typer.testing import CliRunner

import dxpulse.cli.db
from dxpulse.cli.endpoints import without_password
from dxpulse.cli.main import app
from dxpulse.postgres.migrations import migration_files

NAMES = [name for name, _ in migration_files()]
DSN = "postgresql://dxpulse:s3cret@127.0.0.1:9/dxpulse"
"""Nothing listens on port 9 (discard): the connection is refused at once."""


def applying(monkeypatch: pytest.MonkeyPatch, result: list[str] | BaseException) -> list[str]:
    """Replace the migrations with ``result``; returns the DSNs they were asked for."""
    asked: list[str] = []

    async def apply_migrations(dsn: str, *, timeout_s: float = 60.0) -> list[str]:
        asked.append(dsn)
        if isinstance(result, BaseException):
            raise result
        return result

    monkeypatch.setattr(dxpulse.cli.db, "apply_migrations", apply_migrations)
    return asked


def test_help_names_the_setting_it_stands_in_for() -> None:
    result = CliRunner().invoke(app, ["db", "migrate", "--help"])
    assert result.exit_code == 0
    assert "DXPULSE_MIGRATE_AT_START" in result.output
    assert "--json" in result.output


def test_it_says_what_it_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = applying(monkeypatch, NAMES[:2])
    result = CliRunner().invoke(app, ["db", "migrate", "--database-url", DSN])
    assert result.exit_code == 0
    assert result.output == f"applied 2 migrations: {NAMES[0]}, {NAMES[1]}\n"
    assert asked == [DSN]
    applying(monkeypatch, [])
    result = CliRunner().invoke(app, ["db", "migrate"], env={"DXPULSE_DATABASE_URL": DSN})
    assert result.output == f"up to date: all {len(NAMES)} migrations applied\n"


def test_json_lists_the_applied_and_every_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    applying(monkeypatch, NAMES[-1:])
    result = CliRunner().invoke(app, ["db", "migrate", "--json", "--database-url", DSN])
    assert result.exit_code == 0
    assert json.loads(result.output) == {"applied": NAMES[-1:], "migrations": NAMES}


def test_an_unreachable_postgresql_is_one_line_without_the_password() -> None:
    result = CliRunner().invoke(app, ["db", "migrate", "--database-url", DSN, "--timeout", "5"])
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: cannot reach PostgreSQL at dxpulse@127.0.0.1:9/dxpulse (")
    assert line.endswith(
        "); start the local stack (dxpulse stack up) or check DXPULSE_DATABASE_URL / --database-url"
    )
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(
    ("error", "start"),
    [
        (asyncpg.InvalidPasswordError("password authentication failed"), "error: PostgreSQL at dxpulse@"),
        (asyncpg.InsufficientPrivilegeError("permission denied for schema public"), "error: migrating"),
    ],
)
def test_a_refusal_is_one_line_too(monkeypatch: pytest.MonkeyPatch, error: BaseException, start: str) -> None:
    applying(monkeypatch, error)
    result = CliRunner().invoke(app, ["db", "migrate", "--database-url", DSN])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(start)
    assert str(error) in line


def test_where_never_shows_the_password() -> None:
    assert without_password(DSN) == "dxpulse@127.0.0.1:9/dxpulse"
    assert without_password("postgresql:///dxpulse") == "localhost/dxpulse"
