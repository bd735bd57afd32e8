"""The query API's refusals: no read token 401, unknown names 404, a wrong period 422, no database 503."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response

from dxpulse.http.problems import problem, problem_doc

log = logging.getLogger(__name__)


class NotFound(Exception):
    """A path names an indicator, scope or reporter that does not exist: answered with 404."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


class BadPeriod(Exception):
    """A period is not one of the indicator's type: answered with 422."""


class Unauthorized(Exception):
    """No read token, or one that is unknown, revoked or not a read token: answered with 401."""


DATABASE_UNAVAILABLE = (
    OSError,  # refused, reset, unreachable, unknown host
    TimeoutError,  # no connection in time
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and a connection lost mid-query
    asyncpg.OperatorInterventionError,  # class 57: starting up, shutting down, statement timeout
    asyncpg.InsufficientResourcesError,  # class 53: too many connections, disk full, out of memory
    asyncpg.UndefinedTableError,  # the history tables are not created yet
)
"""What a request can meet when PostgreSQL is down, overloaded, slow or not migrated yet: answered
503 with Retry-After. Any other database error (a DataError, say) is a bug: 500, with its traceback."""

NOT_FOUND = problem_doc(
    "not-found: no such indicator, scope or reporter (`field` says which), or no such path"
)
INVALID = problem_doc("invalid-request: a parameter is invalid; `field` names it")
INVALID_IN_PATH = problem_doc(
    "invalid-request: a parameter is invalid (`field` names it); invalid-period: the period is not"
    " of the indicator's type"
)
UNAVAILABLE = problem_doc(
    "database-unavailable: PostgreSQL is unreachable or busy; try again after Retry-After seconds",
    headers=("Retry-After",),
)
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {422: INVALID, 503: UNAVAILABLE}
"""The refusals of a route without path parameters."""
PATH_RESPONSES: dict[int | str, dict[str, Any]] = {404: NOT_FOUND, 422: INVALID_IN_PATH, 503: UNAVAILABLE}
"""The refusals of a route with path parameters: it also answers 404 for a path no route matches
(an id with a slash)."""


async def not_found(request: Request, error: Exception) -> Response:
    assert isinstance(error, NotFound)
    return problem(404, "not-found", "Not found", str(error), field=error.field)


async def bad_period(request: Request, error: Exception) -> Response:
    return problem(422, "invalid-period", "Invalid period", str(error), field="period")


async def unauthorized(request: Request, error: Exception) -> Response:
    return problem(
        401,
        "unauthorized",
        "Unauthorized",
        str(error),
        headers={"WWW-Authenticate": 'Bearer realm="dxpulse"'},
    )


async def database_unavailable(request: Request, error: Exception) -> Response:
    log.warning("query failed on the database: %r", error)
    return problem(
        503,
        "database-unavailable",
        "History database unavailable",
        "PostgreSQL did not answer in time, is overloaded or has no history tables yet (the"
        " history writer creates them); try again after Retry-After seconds",
        headers={"Retry-After": "5"},
    )


def install_query_problems(app: FastAPI) -> None:
    """Answer NotFound, BadPeriod, Unauthorized and PostgreSQL being away as problem+json."""
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(BadPeriod, bad_period)
    app.add_exception_handler(Unauthorized, unauthorized)
    for error_type in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error_type, database_unavailable)
