"""Where a running local stack serves, read from its pid files, so commands in its checkout find it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from dxpulse.stack.config import INGEST, QUERY, StackPaths
from dxpulse.stack.kafka import running_kafka
from dxpulse.stack.postgres import postgres_pid
from dxpulse.stack.process import live_pid
from dxpulse.stack.settings import StackSettings


@dataclass(frozen=True)
class StackEndpoints:
    """The client addresses of the components of one local stack that run now (None: not running)."""

    root: Path
    """The stack's state directory."""
    kafka_bootstrap: str | None
    database_url: str | None
    ingest_url: str | None
    query_url: str | None

    @property
    def running(self) -> bool:
        return any(v is not None for v in (self.kafka_bootstrap, self.database_url, self.ingest_url))


def postmaster_port(paths: StackPaths) -> int | None:
    """The port in postmaster.pid (its fourth line), None when it cannot be read."""
    try:
        lines = paths.postmaster_pid.read_text().split("\n")
        return int(lines[3])
    except (OSError, ValueError, IndexError):
        return None


def _database_url(settings: StackSettings, port: int) -> str:
    # Quoted so a password with '@' or '/' still makes a valid DSN, as StackSettings.database_url.
    user, password = quote(settings.postgres_user, safe=""), quote(settings.postgres_password, safe="")
    return f"postgresql://{user}:{password}@127.0.0.1:{port}/{settings.postgres_db}"


def _service_url(paths: StackPaths, name: str) -> str | None:
    record = live_pid(paths.pid_file(name))
    if record is None or record.port is None:
        return None
    return f"http://127.0.0.1:{record.port}"


def running_endpoints(settings: StackSettings) -> StackEndpoints:
    """What the stack of ``settings.state_dir`` serves now, with the ports it was started with.

    The ports come from the pid files ``dxpulse stack up`` writes (PostgreSQL's own postmaster.pid
    for the database), so they are the ones of the running processes even when the
    ``DXPULSE_STACK_*`` variables of the shell differ; user, password and database name are those of
    ``settings``.
    """
    paths = StackPaths.for_settings(settings)
    brokers = sorted(running_kafka(paths).items())
    kafka_ports = [record.port for _, record in brokers if record.port is not None]
    bootstrap = ",".join(f"127.0.0.1:{port}" for port in kafka_ports) or None
    database_url = None
    if postgres_pid(paths) is not None:
        database_url = _database_url(settings, postmaster_port(paths) or settings.postgres_port)
    return StackEndpoints(
        root=paths.root,
        kafka_bootstrap=bootstrap,
        database_url=database_url,
        ingest_url=_service_url(paths, INGEST),
        query_url=_service_url(paths, QUERY),
    )
