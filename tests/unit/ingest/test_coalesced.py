"""Coalesced: calls made while a query runs go as one query; each caller gets its own answer."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from services.ingest.store import Coalesced, EventKey


def key(n: int) -> EventKey:
    return (f"province:{n:02d}", UUID(int=n))


class FakeTable:
    """Answers which keys it holds, one query at a time, when the test lets it."""

    def __init__(self, held: set[EventKey]) -> None:
        self.held = held
        self.queries: list[list[EventKey]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next: Exception | None = None

    async def query(self, keys: list[EventKey]) -> set[EventKey]:
        self.queries.append(keys)
        await self.gate.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        return self.held.intersection(keys)


async def test_calls_made_while_a_query_runs_go_as_one_query() -> None:
    table = FakeTable({key(1), key(3), key(4)})
    accepted = Coalesced(table.query)
    table.gate.clear()
    first = asyncio.create_task(accepted([key(1), key(2)]))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(accepted([key(n)])) for n in (3, 4, 5)]
    await asyncio.sleep(0)
    table.gate.set()
    assert await first == {key(1)}
    assert [await task for task in waiting] == [{key(3)}, {key(4)}, set()]
    assert table.queries == [[key(1), key(2)], [key(3), key(4), key(5)]]


async def test_an_error_reaches_every_caller_of_that_query_and_the_next_calls_still_work() -> None:
    table = FakeTable({key(1)})
    accepted = Coalesced(table.query)
    table.gate.clear()
    table.fail_next = OSError("connection refused")
    calls = [asyncio.create_task(accepted([key(n)])) for n in (1, 2)]
    await asyncio.sleep(0)
    table.gate.set()
    for call in calls:
        with pytest.raises(OSError, match="connection refused"):
            await call
    assert await accepted([key(1)]) == {key(1)}


async def test_a_cancelled_caller_leaves_the_others_answered() -> None:
    table = FakeTable({key(2)})
    accepted = Coalesced(table.query)
    table.gate.clear()
    gone = asyncio.create_task(accepted([key(1)]))
    stays = asyncio.create_task(accepted([key(2)]))
    await asyncio.sleep(0)
    gone.cancel()
    table.gate.set()
    assert await stays == {key(2)}
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_no_keys_ask_nothing() -> None:
    table = FakeTable(set())
    assert await Coalesced(table.query)([]) == set()
    assert table.queries == []


async def test_up_to_concurrency_queries_run_at_once_and_the_rest_wait_together() -> None:
    table = FakeTable({key(n) for n in range(6)})
    accepted = Coalesced(table.query, concurrency=2)
    table.gate.clear()
    calls = []
    for n in range(6):
        calls.append(asyncio.create_task(accepted([key(n)])))
        await asyncio.sleep(0)
    table.gate.set()
    assert [await call for call in calls] == [{key(n)} for n in range(6)]
    assert table.queries == [[key(0)], [key(1)], [key(2), key(3), key(4), key(5)]]


async def test_a_call_made_as_soon_as_the_last_query_ends_is_answered() -> None:
    # The caller wakes before the ended drain task's done callbacks run; a slot counted as busy
    # until then left this second call waiting for a drain that had already ended: a request that
    # never answered.
    table = FakeTable({key(1), key(2)})
    accepted = Coalesced(table.query, concurrency=1)

    async def one_after_the_other() -> tuple[set[EventKey], set[EventKey]]:
        first = await accepted([key(1)])
        return first, await accepted([key(2)])

    assert await asyncio.wait_for(one_after_the_other(), 2) == ({key(1)}, {key(2)})
