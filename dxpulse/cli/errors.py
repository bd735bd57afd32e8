"""The one place where a server a command cannot reach becomes one line saying what to do, and exit 1."""

from __future__ import annotations

import logging
import socket
from typing import Any

import asyncpg
import httpx
import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from typer import _click

from dxpulse.cli.endpoints import OPTION_OF, Server, forget_servers, servers_in_use, where
from dxpulse.cli.help import HelpGroup, plain_help

UNREACHABLE_EXIT = 1
"""The exit code of a command that could not reach a server it needs."""

_POSTGRES_LOGIN = (
    asyncpg.InvalidAuthorizationSpecificationError,  # class 28: wrong user or password
    asyncpg.InvalidCatalogNameError,  # the database does not exist
)
_POSTGRES_CONNECTION = (
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or was lost
    asyncpg.OperatorInterventionError,  # class 57: shutting down, starting up
    asyncpg.TooManyConnectionsError,
    *_POSTGRES_LOGIN,
)
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    KafkaError,
    httpx.TransportError,  # connect, read and protocol errors: not OSErrors
    *_POSTGRES_CONNECTION,
    OSError,
)
"""What a command's failure to reach its servers raises; an OSError only counts when it is about
the network (a file that cannot be read is another error)."""


def _network(error: OSError) -> bool:
    # asyncio raises a plain OSError("Multiple exceptions: ...") when every address of a host refused.
    return isinstance(error, ConnectionError | TimeoutError | socket.gaierror) or type(error) is OSError


def server_of(error: BaseException, in_use: dict[Server, str]) -> Server | None:
    """The server ``error`` says could not be reached, of those the command resolved; None when
    ``error`` is not about reaching a server."""
    if isinstance(error, KafkaError):
        return Server.KAFKA
    if isinstance(error, httpx.TransportError):
        return Server.INGEST
    if isinstance(error, _POSTGRES_CONNECTION):
        return Server.POSTGRES
    if not isinstance(error, OSError) or not _network(error):
        return None
    # aiokafka and httpx wrap their socket errors; asyncpg lets them through.
    if len(in_use) == 1:
        return next(iter(in_use))
    return Server.POSTGRES if Server.POSTGRES in in_use else None


def one_line(error: BaseException) -> str:
    """An exception as ``Type: message`` on one line (aiokafka's messages start with the type)."""
    name, text = type(error).__name__, " ".join(str(error).split())
    return text if text.startswith(f"{name}:") else f"{name}: {text}"


def failure_line(error: BaseException, in_use: dict[Server, str]) -> str | None:
    """The line a command prints when ``error`` means a server could not be reached or refused the
    login, naming the server, its address (never a password) and the option to change."""
    server = server_of(error, in_use)
    if server is None:
        return None
    option, variable = OPTION_OF[server]
    address = f" at {where(server, in_use[server])}" if server in in_use else ""
    if isinstance(error, _POSTGRES_LOGIN):
        return (
            f"error: PostgreSQL{address} refused the login ({one_line(error)}); check the user, password"
            f" and database in {variable} / {option}"
        )
    return (
        f"error: cannot reach {server}{address} ({one_line(error)}); start the local stack"
        f" (dxpulse stack up) or check {variable} / {option}"
    )


class CommandGroup(HelpGroup):
    """The ``dxpulse`` command: help as dxpulse.cli.help shows it, and the one error handler."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_help(self)

    def invoke(self, ctx: _click.Context) -> Any:
        forget_servers()
        # aiokafka logs every failed connection at ERROR; the command's own line says it once.
        kafka_log = logging.getLogger("aiokafka")
        if not any(isinstance(h, logging.NullHandler) for h in kafka_log.handlers):
            kafka_log.addHandler(logging.NullHandler())
        try:
            return super().invoke(ctx)
        except CONNECTION_ERRORS as error:
            line = failure_line(error, servers_in_use())
            if line is None:
                raise
            Console(stderr=True, highlight=False, soft_wrap=True).print(line, markup=False)
            raise typer.Exit(UNREACHABLE_EXIT) from None
