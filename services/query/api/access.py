"""Who may read: a read token (subject ``reader``) by default; the scoreboard may be made public."""

# No `from __future__ import annotations`: FastAPI reads the parameter types below at run time.
from typing import Annotated, Any

import asyncpg
from fastapi import Depends
from fastapi.params import Depends as DependsParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dxpulse.domain.tokens import READER
from dxpulse.http.problems import problem_doc
from dxpulse.postgres.token_store import subject_of
from services.query.api.deps import PoolDep
from services.query.api.problems import Unauthorized

MAX_TOKEN_LENGTH = 256


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ReadToken",
    description=(
        "A read token: `dxpulse token create reader --label <who>` prints one. With"
        " DXPULSE_QUERY_PUBLIC=true the scoreboard routes need none; reporters' values always do."
    ),
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def check_read_token(pool: asyncpg.Pool, secret: str | None) -> None:
    """Raise Unauthorized unless ``secret`` is a live read token: the one check every reader passes."""
    if secret is None:
        raise Unauthorized("send a read token: Authorization: Bearer <token>")
    if len(secret) > MAX_TOKEN_LENGTH or await subject_of(pool, secret) != READER:
        raise Unauthorized("the token is unknown, revoked or not a read token")


async def require_reader(pool: PoolDep, credentials: Credentials) -> None:
    """Let the request through only with ``Authorization: Bearer <live read token>``."""
    await check_read_token(pool, None if credentials is None else credentials.credentials)


UNAUTHORIZED = {
    **problem_doc("unauthorized: no read token, or an unknown, revoked or reporter's token"),
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
}


def guard(needs_token: bool) -> tuple[list[DependsParam], dict[int | str, dict[str, Any]]]:
    """The dependencies and documented refusals of a router that needs a read token (or none)."""
    if not needs_token:
        return [], {}
    return [Depends(require_reader)], {401: UNAUTHORIZED}
