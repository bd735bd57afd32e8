"""Database migrations: numbered SQL files applied once each, in order, recorded in schema_migrations."""

from __future__ import annotations

from importlib import resources

import asyncpg

MIGRATE_COMMAND = "dxpulse db migrate"
"""What applies the migrations outside the services (the Kubernetes Job, an operator)."""


class MigrationsPending(Exception):
    """The database lacks migrations this release needs, and the process may not apply them."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"the database lacks migrations {', '.join(names)}: run `{MIGRATE_COMMAND}`")
        self.names = names


def migration_files() -> list[tuple[str, str]]:
    """The (name, sql) of every migration shipped with the package, in the order they apply."""
    folder = resources.files(__package__)
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


async def pending_migrations(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """The (name, sql) of the shipped migrations ``conn``'s database has not recorded, in order."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return migration_files()
    done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
    return [(name, sql) for name, sql in migration_files() if name not in done]


async def apply_migrations(dsn: str, *, timeout_s: float = 60.0) -> list[str]:
    """Apply the migrations the database has not seen yet; returns the names applied.

    An advisory lock makes concurrent callers (two services starting together) take turns.
    ``timeout_s`` bounds the connection attempt.
    """
    conn = await asyncpg.connect(dsn, timeout=timeout_s)
    try:
        await conn.execute("SELECT pg_advisory_lock(4242)")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied: list[str] = []
        for name, sql in await pending_migrations(conn):
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(4242)")
        await conn.close()


async def prepare_schema(dsn: str, *, migrate: bool, timeout_s: float = 60.0) -> list[str]:
    """Make sure the database has every migration before a service uses it; returns the names applied.

    With ``migrate`` the missing ones are applied (``apply_migrations``); without, a missing one
    raises ``MigrationsPending``, which the services' retries treat as an outage: they wait for
    ``dxpulse db migrate`` rather than write into tables that do not exist.
    """
    if migrate:
        return await apply_migrations(dsn, timeout_s=timeout_s)
    conn = await asyncpg.connect(dsn, timeout=timeout_s)
    try:
        missing = [name for name, _ in await pending_migrations(conn)]
    finally:
        await conn.close()
    if missing:
        raise MigrationsPending(missing)
    return []


async def open_pool(dsn: str, *, migrate: bool) -> asyncpg.Pool:
    """A small pool on a migrated database, for a writer agent (history, alert transitions);
    ``migrate`` as in ``prepare_schema``."""
    await prepare_schema(dsn, migrate=migrate)
    return await asyncpg.create_pool(dsn, min_size=1, max_size=2)
