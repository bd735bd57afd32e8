"""Store: the ingest's pool opens on a migrated database, migrating it only when told to."""

from __future__ import annotations

import pytest

import services.ingest.store
from dxpulse.postgres.migrations import MigrationsPending
from services.ingest.store import STORE_ERRORS, Store


@pytest.mark.parametrize("migrate", [False, True])
async def test_the_pool_waits_for_the_migrations_unless_it_may_apply_them(
    monkeypatch: pytest.MonkeyPatch, migrate: bool
) -> None:
    asked: list[bool] = []

    async def prepare_schema(dsn: str, *, migrate: bool, timeout_s: float = 60.0) -> list[str]:
        asked.append(migrate)
        raise MigrationsPending(["0006_accepted_events_retention.sql"])

    monkeypatch.setattr(services.ingest.store, "prepare_schema", prepare_schema)
    store = Store("postgresql://x:y@127.0.0.1:9/z", migrate=migrate)
    # One of the errors the ingest answers 503 to, and tries again on the next request.
    with pytest.raises(STORE_ERRORS):
        await store.pool()
    with pytest.raises(MigrationsPending):
        await store.pool()
    assert asked == [migrate, migrate]
