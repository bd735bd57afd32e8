"""Database migrations: numbered SQL files applied once each, in order, recorded in schema_migrations."""

from __future__ import annotations

from importlib import resources

import asyncpg


def migration_files() -> list[tuple[str, str]]:
    """The (name, sql) of every migration shipped with the package, in the order they apply."""
    folder = resources.files(__package__)
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


async def apply_migrations(dsn: str) -> list[str]:
    """Apply the migrations the database has not seen yet; returns the names applied.

    An advisory lock makes concurrent callers (two services starting together) take turns.
    """
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock(4242)")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
        applied: list[str] = []
        for name, sql in migration_files():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(4242)")
        await conn.close()


async def open_pool(dsn: str) -> asyncpg.Pool:
    """A small pool on a migrated database, for a writer agent (history, alert transitions)."""
    await apply_migrations(dsn)
    return await asyncpg.create_pool(dsn, min_size=1, max_size=2)
