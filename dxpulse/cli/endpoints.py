"""Which Kafka, PostgreSQL and ingest a command talks to: its option, else the running local stack."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from pydantic import ValidationError
from rich.console import Console

from dxpulse.cli.filters import usage_error
from dxpulse.stack.endpoints import StackEndpoints, running_endpoints
from dxpulse.stack.settings import StackSettings


class Server(StrEnum):
    """The servers a command may need, as its messages name them."""

    KAFKA = "Kafka"
    POSTGRES = "PostgreSQL"
    INGEST = "the ingest"


OPTION_OF = {
    Server.KAFKA: ("--kafka-bootstrap", "DXPULSE_KAFKA_BOOTSTRAP"),
    Server.POSTGRES: ("--database-url", "DXPULSE_DATABASE_URL"),
    Server.INGEST: ("--ingest-url", "DXPULSE_INGEST_URL"),
}
"""The option and variable that name each server, for the messages that say what to change."""

_DEFAULT_HELP = " Default: the local stack running here, else the DXPULSE_STACK_* ports."


def _server_option(flag: str, metavar: str, help_text: str, envvar: str) -> Any:
    """A server's option: its variable, and the local stack (or the DXPULSE_STACK_* ports) when unset."""
    return typer.Option(
        flag, metavar=metavar, help=help_text + _DEFAULT_HELP, envvar=envvar, show_default=False
    )


KafkaBootstrap = Annotated[
    str | None,
    _server_option(
        "--kafka-bootstrap", "HOST:PORT,...", "Kafka bootstrap servers.", "DXPULSE_KAFKA_BOOTSTRAP"
    ),
]
DatabaseUrl = Annotated[
    str | None,
    _server_option(
        "--database-url", "DSN", "URL of the PostgreSQL database (postgresql://...).", "DXPULSE_DATABASE_URL"
    ),
]
IngestUrl = Annotated[
    str | None, _server_option("--ingest-url", "URL", "Base URL of the ingest API.", "DXPULSE_INGEST_URL")
]

_in_use: dict[Server, str] = {}


def servers_in_use() -> dict[Server, str]:
    """The servers the running command resolved, with their addresses (for its error messages)."""
    return dict(_in_use)


def forget_servers() -> None:
    """Start a command with no server resolved."""
    _in_use.clear()


def without_password(dsn: str) -> str:
    """``user@host:port/database`` of a DSN, never its password, for messages."""
    parts = urlsplit(dsn)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{user}{parts.hostname or 'localhost'}{port}{parts.path}"


def where(server: Server, address: str) -> str:
    """An address as messages show it: a DSN without its password."""
    return without_password(address) if server is Server.POSTGRES else address


def _resolve(server: Server, given: str | None) -> str:
    """``given`` when the option or its variable is set; else what the local stack of this folder
    serves, said on stderr; else the address of the ``DXPULSE_STACK_*`` settings."""
    if given is not None:
        _in_use[server] = given
        return given
    try:
        settings = StackSettings()
    except ValidationError as error:
        first = error.errors()[0]
        name = "DXPULSE_STACK_" + "_".join(str(part) for part in first["loc"]).upper()
        raise usage_error(f"bad setting {name}: {first['msg'].removeprefix('Value error, ')}") from None
    local = running_endpoints(settings)
    found = _address(local, server)
    if found is not None:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"using {server} of the local stack in {local.root}: {where(server, found)}",
            style="dim",
            markup=False,
        )
    else:
        found = {
            Server.KAFKA: settings.kafka_bootstrap,
            Server.POSTGRES: settings.database_url,
            Server.INGEST: f"http://127.0.0.1:{settings.ingest_port}",
        }[server]
    _in_use[server] = found
    return found


def _address(endpoints: StackEndpoints, server: Server) -> str | None:
    return {
        Server.KAFKA: endpoints.kafka_bootstrap,
        Server.POSTGRES: endpoints.database_url,
        Server.INGEST: endpoints.ingest_url,
    }[server]


def kafka_bootstrap(given: str | None) -> str:
    """The Kafka a command reads: ``--kafka-bootstrap`` / DXPULSE_KAFKA_BOOTSTRAP, else the local
    stack's."""
    return _resolve(Server.KAFKA, given)


def database_url(given: str | None) -> str:
    """The PostgreSQL a command uses: ``--database-url`` / DXPULSE_DATABASE_URL, else the local
    stack's."""
    return _resolve(Server.POSTGRES, given)


def ingest_url(given: str | None) -> str:
    """The ingest a command sends to: ``--ingest-url`` / DXPULSE_INGEST_URL, else the local stack's."""
    return _resolve(Server.INGEST, given)
