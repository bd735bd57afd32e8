"""until_done: PostgreSQL outages are waited out, anything else surfaces at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from dxpulse.postgres.retry import until_done

Attempt = Callable[[], Awaitable[str]]


def _failing(errors: list[BaseException], result: str = "written") -> tuple[list[int], Attempt]:
    """An attempt raising ``errors`` one per call, then returning ``result``; and its calls."""
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(len(calls))
        if errors:
            raise errors.pop(0)
        return result

    return calls, attempt


async def test_an_outage_is_retried_until_the_write_succeeds() -> None:
    errors: list[BaseException] = [
        ConnectionRefusedError(111, "refused"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ]
    calls, attempt = _failing(errors)
    seen: list[BaseException] = []
    result = await until_done(attempt, "writing", failed=seen.append, delays_s=(0.0,))
    assert result == "written"
    assert len(calls) == 4
    assert [type(e) for e in seen] == [
        ConnectionRefusedError,
        asyncpg.CannotConnectNowError,
        asyncpg.ConnectionDoesNotExistError,
    ]


async def test_the_waits_grow_and_then_repeat_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def no_sleep(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr("dxpulse.postgres.retry.asyncio.sleep", no_sleep)
    _, attempt = _failing([OSError("unreachable") for _ in range(5)])
    await until_done(attempt, "writing", delays_s=(1.0, 2.0, 5.0))
    assert waits == [1.0, 2.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize(
    "error",
    [ValueError("a bug"), asyncpg.UniqueViolationError("duplicate key"), asyncpg.DataError("bad value")],
)
async def test_errors_other_than_an_outage_are_raised_at_once(error: BaseException) -> None:
    calls, attempt = _failing([error])
    seen: list[BaseException] = []
    with pytest.raises(type(error)):
        await until_done(attempt, "writing", failed=seen.append, delays_s=(0.0,))
    assert (len(calls), seen) == (1, [])
