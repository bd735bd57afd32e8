"""prepare_schema: a service migrates only when told to, and otherwise waits for `dxpulse db migrate`."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

import dxpulse.postgres.migrations
from dxpulse.postgres.migrations import MigrationsPending, migration_files, prepare_schema
from dxpulse.postgres.retry import until_done

NAMES = [name for name, _ in migration_files()]


class FakeConnection:
    """What ``pending_migrations`` asks of a connection, over a database with ``applied`` recorded
    (None: no schema_migrations table at all)."""

    def __init__(self, applied: list[str] | None) -> None:
        self.applied = applied
        self.closed = False

    async def fetchval(self, query: str) -> str | None:
        assert "to_regclass('schema_migrations')" in query
        return None if self.applied is None else "schema_migrations"

    async def fetch(self, query: str) -> list[dict[str, str]]:
        assert query == "SELECT name FROM schema_migrations"
        return [{"name": name} for name in self.applied or []]

    async def close(self) -> None:
        self.closed = True


def connecting_to(monkeypatch: pytest.MonkeyPatch, applied: list[str] | None) -> FakeConnection:
    conn = FakeConnection(applied)

    async def connect(dsn: str, **options: float) -> FakeConnection:
        return conn

    monkeypatch.setattr(asyncpg, "connect", connect)
    return conn


@pytest.mark.parametrize("applied", [None, [], NAMES[:-1]], ids=["no table", "none", "all but the last"])
async def test_a_database_short_of_migrations_is_refused(
    monkeypatch: pytest.MonkeyPatch, applied: list[str] | None
) -> None:
    conn = connecting_to(monkeypatch, applied)
    with pytest.raises(MigrationsPending) as raised:
        await prepare_schema("postgresql://db/dxpulse", migrate=False)
    missing = NAMES[len(applied or []) :]
    assert raised.value.names == missing
    assert (
        str(raised.value) == f"the database lacks migrations {', '.join(missing)}: run `dxpulse db migrate`"
    )
    assert conn.closed


async def test_a_migrated_database_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    # A newer release's migrations, unknown to this one, are no reason to refuse.
    conn = connecting_to(monkeypatch, [*NAMES, "9999_later.sql"])
    assert await prepare_schema("postgresql://db/dxpulse", migrate=False) == []
    assert conn.closed


async def test_migrate_applies_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, float]] = []

    async def apply_migrations(dsn: str, *, timeout_s: float = 60.0) -> list[str]:
        calls.append((dsn, timeout_s))
        return NAMES

    monkeypatch.setattr(dxpulse.postgres.migrations, "apply_migrations", apply_migrations)
    assert await prepare_schema("postgresql://db/dxpulse", migrate=True, timeout_s=5.0) == NAMES
    assert calls == [("postgresql://db/dxpulse", 5.0)]


async def test_writers_wait_for_the_migrations_as_for_an_outage() -> None:
    attempts: list[Any] = []

    async def open_pool() -> str:
        attempts.append(None)
        if len(attempts) < 3:
            raise MigrationsPending(NAMES[-1:])
        return "pool"

    seen: list[BaseException] = []
    assert await until_done(open_pool, "opening", failed=seen.append, delays_s=(0.0,)) == "pool"
    assert [type(error) for error in seen] == [MigrationsPending, MigrationsPending]
