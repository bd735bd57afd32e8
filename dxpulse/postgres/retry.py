"""Retrying a PostgreSQL write through an outage, so a writer stalls and catches up instead of crashing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg

from dxpulse.postgres.migrations import MigrationsPending

log = logging.getLogger(__name__)

T = TypeVar("T")

POSTGRES_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable
    TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or was lost
    asyncpg.InterfaceError,  # the connection was closed under the client
    asyncpg.OperatorInterventionError,  # class 57: shutting down, starting up
    asyncpg.TooManyConnectionsError,
    MigrationsPending,  # `dxpulse db migrate` has not run yet (the Kubernetes Job still runs)
)
"""Errors that mean PostgreSQL could not be reached, is restarting or is not migrated yet; any other
error is a bug to surface."""

RETRY_DELAYS_S: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits between tries; the last one repeats for as long as the outage lasts."""


async def until_done(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    *,
    failed: Callable[[BaseException], None] = lambda error: None,
    delays_s: Sequence[float] = RETRY_DELAYS_S,
) -> T:
    """``attempt()``'s result, trying again after each error of ``POSTGRES_UNREACHABLE``.

    A writer whose input offsets are committed only after the write must not skip it, and a crash
    would only restart the worker into the same outage (faust's supervisor gives up on an agent
    failing 100 times a second and stops the worker). Waiting keeps the worker in its group, its
    lag visible in /metrics, and lets it catch up by itself when PostgreSQL is back.
    """
    tries = 0
    while True:
        try:
            return await attempt()
        except POSTGRES_UNREACHABLE as error:
            failed(error)
            delay = delays_s[min(tries, len(delays_s) - 1)]
            tries += 1
            log.warning(
                "%s failed (%r), try %d; is PostgreSQL reachable? next try in %g s", what, error, tries, delay
            )
            await asyncio.sleep(delay)
