"""The ingest's PostgreSQL: token lookups and the durable record of accepted event ids."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import asyncpg

from dxpulse.domain.clock import Clock
from dxpulse.postgres.migrations import MigrationsPending, prepare_schema
from dxpulse.postgres.token_store import subject_of

log = logging.getLogger(__name__)

EventKey = tuple[str, UUID]
"""(reporter, event_id): event ids are unique per reporter."""

STORE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    MigrationsPending,
)
"""What a PostgreSQL that is down, restarting or not migrated yet raises."""


class IngestStore(Protocol):
    """What the ingest asks of PostgreSQL: ``Store``, or an in-memory stand-in in unit tests."""

    async def subject(self, token: str) -> str | None:
        """The subject the token was issued for; None when unknown or revoked."""

    async def accepted(self, keys: Iterable[EventKey]) -> set[EventKey]:
        """Which of ``keys`` were accepted before."""

    async def record(self, keys: Iterable[EventKey]) -> None:
        """Remember keys Kafka acknowledged."""

    async def prune_accepted(self, before: datetime) -> int:
        """Forget event ids accepted before ``before``; returns how many were deleted."""

    async def close(self) -> None:
        """Close the connections, if any."""


class AcceptedIds:
    """The most recently accepted event keys, bounded (least recently seen forgotten first).

    Held as (reporter, the id's integer): a tuple of a str and an int is left out of Python's
    garbage collector, a tuple holding a ``UUID`` object is not, so up to 200,000 keys (400,000
    objects) are not walked by every full collection. Under the bench's batches those passes are
    dominated by the reports in flight; these keys would add to them over time
    (docs/design/garbage-collection.md).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: OrderedDict[tuple[str, int], None] = OrderedDict()

    def __contains__(self, key: EventKey) -> bool:
        held = _held(key)
        if held in self._keys:
            self._keys.move_to_end(held)
            return True
        return False

    def held(self) -> list[tuple[str, int]]:
        """The keys as held, oldest first."""
        return list(self._keys)

    def add(self, key: EventKey) -> None:
        held = _held(key)
        self._keys[held] = None
        self._keys.move_to_end(held)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)


def _held(key: EventKey) -> tuple[str, int]:
    return (key[0], key[1].int)


POOL_SIZE = 4
"""Connections to PostgreSQL per ingest process."""


ACCEPTED_LOOKUP = (
    "SELECT key.reporter, key.event_id FROM unnest($1::text[], $2::uuid[]) AS key (reporter, event_id)"
    " CROSS JOIN LATERAL (SELECT FROM accepted_events AS accepted WHERE accepted.reporter = key.reporter"
    " AND accepted.event_id = key.event_id LIMIT 1) AS found"
)
"""Which of the keys ($1, $2: reporters, event ids) were accepted before: one primary-key lookup each.

Written so that PostgreSQL cannot do anything else. As ``(reporter, event_id) IN (SELECT * FROM
unnest(...))``, with a few dozen keys (concurrent requests' keys go as one query) and a table of some
ten thousand rows, it hashed the keys and scanned the whole table, growing by thousands of rows a
second: at 2,000 reports/s PostgreSQL took half a core, 1,866 scans reading 28 million rows in 20 s
(docs/design/ingest.md, Idempotency).
"""


class Coalesced:
    """At most ``concurrency`` queries at a time; calls made meanwhile wait and go as one query.

    Concurrent requests each asked PostgreSQL on their own: two round trips per single-report
    request were a quarter of the ingest's CPU, PostgreSQL's own work aside (BENCHMARKS.md). Here a
    call that finds every query slot busy waits, and the calls gathered meanwhile go as one query
    in the next free slot (a group commit). Each caller gets the result for its own keys, or the
    error of the query that carried them.
    """

    def __init__(
        self, query: Callable[[list[EventKey]], Awaitable[set[EventKey]]], concurrency: int = 1
    ) -> None:
        self._query = query
        self._concurrency = concurrency
        self._waiting: list[tuple[list[EventKey], asyncio.Future[set[EventKey]]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: Iterable[EventKey]) -> set[EventKey]:
        mine = list(keys)
        if not mine:
            return set()
        answer: asyncio.Future[set[EventKey]] = asyncio.get_running_loop().create_future()
        self._waiting.append((mine, answer))
        if len(self._running) < self._concurrency:
            # Tasks of their own, so a cancelled caller does not leave the others waiting.
            task = asyncio.create_task(self._drain(), name="coalesced-query")
            self._running.add(task)
        return await answer

    async def _drain(self) -> None:
        try:
            while self._waiting:
                calls, self._waiting = self._waiting, []
                try:
                    found = await self._query([key for keys, _ in calls for key in keys])
                except asyncio.CancelledError:  # shutting down: nobody gets an answer
                    for _, answer in (*calls, *self._waiting):
                        answer.cancel()
                    raise
                except Exception as error:
                    for _, answer in calls:
                        if not answer.done():
                            answer.set_exception(error)
                    continue
                for keys, answer in calls:
                    if not answer.done():
                        answer.set_result(found.intersection(keys))
        finally:
            # The slot is free the moment the loop finds nothing waiting, not in a done callback:
            # the callers it answered run first, and a call one of them made then saw every slot
            # taken and waited for a drain that had ended, for ever.
            current = asyncio.current_task()
            if current is not None:
                self._running.discard(current)


RECORDS_BEHIND = 50_000
"""Accepted ids written behind the answers at most, before requests wait for their own writes."""
DRAIN_TIMEOUT_S = 10.0
"""How long a shutdown waits for the ids still to be written."""


class RecordsBehind:
    """Writes accepted ids to the durable record after their requests are answered.

    A request waits for Kafka's ack, not for PostgreSQL: an id is in memory (``AcceptedIds``) from
    the ack on, and written here in the background, concurrent requests' ids as one query
    (``Coalesced``). A crash before the write, or another ingest process asked the same event id
    within those milliseconds, can only publish a report twice, which is harmless
    (docs/design/ingest.md, Idempotency). While PostgreSQL is slow, at most ``limit`` ids wait;
    past that a request writes its own before it is answered, so a slow database slows the
    requests instead of filling memory. ``drain`` waits for every write (at shutdown).
    """

    def __init__(self, store: IngestStore, limit: int = RECORDS_BEHIND) -> None:
        self.store = store
        self.limit = limit
        self.pending = 0
        """Ids handed over and not yet written (or given up)."""
        self._writes: set[asyncio.Task[None]] = set()

    async def record(self, keys: list[EventKey]) -> None:
        """Write ``keys`` in the background, or now while ``limit`` ids wait already."""
        if not keys:
            return
        if self.pending + len(keys) > self.limit:
            await self._write(keys)
            return
        self.pending += len(keys)
        write = asyncio.create_task(self._write(keys, behind=True), name="record-accepted-ids")
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Wait until every id handed over is written or given up, for at most ``timeout_s``: a
        PostgreSQL that does not answer must not hold a shutdown."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._writes:
            left = max(deadline - asyncio.get_running_loop().time(), 0.0)
            # Writes still running after the wait mean the time is up.
            _, unwritten = await asyncio.wait(set(self._writes), timeout=left)
            if unwritten:
                log.warning(
                    "gave up writing %d accepted event ids: PostgreSQL did not answer within %g s",
                    self.pending,
                    timeout_s,
                )
                for write in unwritten:
                    write.cancel()
                await asyncio.gather(*unwritten, return_exceptions=True)

    async def _write(self, keys: list[EventKey], *, behind: bool = False) -> None:
        try:
            await self.store.record(keys)
        except STORE_ERRORS as error:
            log.warning("cannot record %d accepted event ids (%s)", len(keys), type(error).__name__)
        finally:
            if behind:
                self.pending -= len(keys)


class Store:
    """A connection pool opened on first use (so the API starts while PostgreSQL is down), on a
    database with every migration: applied first when ``migrate``, else awaited (``prepare_schema``)."""

    def __init__(self, dsn: str, connect_timeout_s: float = 5.0, *, migrate: bool = False) -> None:
        self._dsn = dsn
        self._timeout = connect_timeout_s
        self._migrate = migrate
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        # Two queries of each kind at a time: the pool's four connections, and PostgreSQL's
        # processes can use more than one core.
        self._accepted = Coalesced(self._accepted_now, concurrency=POOL_SIZE // 2)
        self._record = Coalesced(self._record_now, concurrency=POOL_SIZE // 2)

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    await asyncio.wait_for(prepare_schema(self._dsn, migrate=self._migrate), self._timeout)
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=1, max_size=POOL_SIZE, timeout=self._timeout, reset=_keep_session
                    )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def subject(self, token: str) -> str | None:
        return await subject_of(await self.pool(), token)

    async def accepted(self, keys: Iterable[EventKey]) -> set[EventKey]:
        """Which of ``keys`` were accepted before."""
        return await self._accepted(keys)

    async def record(self, keys: Iterable[EventKey]) -> None:
        """Remember keys Kafka acknowledged."""
        await self._record(keys)

    async def _accepted_now(self, keys: list[EventKey]) -> set[EventKey]:
        reporters, ids = _columns(keys)
        rows = await (await self.pool()).fetch(ACCEPTED_LOOKUP, reporters, ids)
        return {(row["reporter"], row["event_id"]) for row in rows}

    async def _record_now(self, keys: list[EventKey]) -> set[EventKey]:
        reporters, ids = _columns(keys)
        await (await self.pool()).execute(
            "INSERT INTO accepted_events (reporter, event_id)"
            " SELECT * FROM unnest($1::text[], $2::uuid[]) ON CONFLICT DO NOTHING",
            reporters,
            ids,
        )
        return set()

    async def prune_accepted(self, before: datetime) -> int:
        """Forget event ids accepted before ``before``; returns how many were deleted."""
        status = await (await self.pool()).execute(
            "DELETE FROM accepted_events WHERE accepted_at < $1", before
        )
        return int(status.split()[-1])


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release, doing nothing: asyncpg's default sends RESET ALL, CLOSE ALL,
    UNLISTEN and an advisory unlock, a round trip per query here (13% of ingest's CPU in
    BENCHMARKS.md) to undo session state this store never sets. asyncpg still rolls back an open
    transaction before calling it."""


def _columns(keys: Iterable[EventKey]) -> tuple[list[str], list[UUID]]:
    unique = list(dict.fromkeys(keys))
    return [k[0] for k in unique], [k[1] for k in unique]


class Pruner:
    """Forgets accepted event ids past the retention, every ``interval_s``: the durable record would
    otherwise grow by every report ever sent. A resend after that is published again, harmlessly."""

    def __init__(self, store: IngestStore, retention: timedelta, interval_s: float, clock: Clock) -> None:
        self.store = store
        self.retention = retention
        self.interval_s = interval_s
        self.clock = clock

    async def run(self) -> None:
        """Prune now, then every interval, until cancelled."""
        while True:
            try:
                pruned = await self.store.prune_accepted(self.clock() - self.retention)
                if pruned:
                    log.info("forgot %d accepted event ids older than %s", pruned, self.retention)
            except STORE_ERRORS as error:  # PostgreSQL down: the next round catches up
                log.warning("could not prune accepted event ids: %r", error)
            await asyncio.sleep(self.interval_s)
