"""The one error handler: Kafka, PostgreSQL or an ingest that cannot be reached is one line and exit 1.

Each server is a real closed port on 127.0.0.1, so the connections really fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import dxpulse
from dxpulse.cli.endpoints import Server
from dxpulse.cli.errors import failure_line, server_of
from dxpulse.cli.main import app
from dxpulse.stack.testing import free_ports

UNSET = {"DXPULSE_KAFKA_BOOTSTRAP": None, "DXPULSE_DATABASE_URL": None, "DXPULSE_INGEST_URL": None}


def closed_port() -> int:
    return free_ports(1)[0]  # nothing listens there: connections are refused at once


def one_error_line(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, env=UNSET)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "Traceback" not in line
    return line


@pytest.mark.parametrize(
    "command",
    [
        ["rollups", "--json"],
        ["alerts", "--history"],
        ["status", "--json"],
    ],
    ids=lambda c: c[0],
)
def test_an_unreachable_kafka(command: list[str]) -> None:
    bootstrap = f"127.0.0.1:{closed_port()}"
    line = one_error_line([*command, "--kafka-bootstrap", bootstrap])
    assert line.startswith(f"error: cannot reach Kafka at {bootstrap} (KafkaConnectionError: ")
    assert line.endswith(
        "start the local stack (dxpulse stack up) or check DXPULSE_KAFKA_BOOTSTRAP / --kafka-bootstrap"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["token", "list"],
        ["token", "revoke", "abc"],
        ["token", "create", "province:79"],
        ["db", "migrate"],
        ["remap", "emc_connection", "2024-H1"],
    ],
)
def test_an_unreachable_postgresql(command: list[str]) -> None:
    port = closed_port()
    line = one_error_line(
        [*command, "--database-url", f"postgresql://dxpulse:s3cret@127.0.0.1:{port}/dxpulse"]
    )
    assert line.startswith(f"error: cannot reach PostgreSQL at dxpulse@127.0.0.1:{port}/dxpulse (")
    assert line.endswith("or check DXPULSE_DATABASE_URL / --database-url")
    assert "s3cret" not in line


def test_an_unreachable_ingest(tmp_path: Path) -> None:
    reports = tmp_path / "reports.csv"
    reports.write_text(
        "reporter,indicator,period,observed_at,kind,value\n"
        "province:79,emc_connection,2024-H1,2024-06-30T10:00:00Z,flag,1\n",
        encoding="utf-8",
    )
    url = f"http://127.0.0.1:{closed_port()}"
    line = one_error_line(["send", str(reports), "--token", "dxp_x_y", "--ingest-url", url])
    assert line.startswith(f"error: cannot reach the ingest at {url} (ConnectError: ")
    assert line.endswith("or check DXPULSE_INGEST_URL / --ingest-url")


def test_a_refused_login_says_to_check_the_credentials() -> None:
    import asyncpg

    error = asyncpg.InvalidPasswordError('password authentication failed for user "dxpulse"')
    line = failure_line(error, {Server.POSTGRES: "postgresql://dxpulse:s3cret@db:5432/dxpulse"})
    assert line == (
        "error: PostgreSQL at dxpulse@db:5432/dxpulse refused the login (InvalidPasswordError: password"
        ' authentication failed for user "dxpulse"); check the user, password and database in'
        " DXPULSE_DATABASE_URL / --database-url"
    )


def test_errors_that_are_not_about_a_server_are_left_alone() -> None:
    in_use = {Server.KAFKA: "127.0.0.1:9092"}
    assert server_of(FileNotFoundError(2, "No such file", "reports.csv"), in_use) is None
    assert server_of(PermissionError(13, "Permission denied"), in_use) is None
    assert server_of(ValueError("bad"), in_use) is None
    assert server_of(ConnectionRefusedError(111, "refused"), in_use) is Server.KAFKA
    both = {Server.KAFKA: "127.0.0.1:9092", Server.POSTGRES: "postgresql://127.0.0.1:5433/dxpulse"}
    assert server_of(OSError("Multiple exceptions: ..."), both) is Server.POSTGRES
    assert server_of(ConnectionRefusedError(111, "refused"), {}) is None


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"dxpulse {dxpulse.__version__}\n"


def test_a_command_using_several_servers_names_the_one_it_could_not_reach() -> None:
    kafka, postgres, ingest = (closed_port() for _ in range(3))
    dsn = ["--database-url", f"postgresql://dxpulse:x@127.0.0.1:{postgres}/dxpulse"]
    servers = ["--kafka-bootstrap", f"127.0.0.1:{kafka}", "--ingest-url", f"http://127.0.0.1:{ingest}", *dsn]
    demo = CliRunner().invoke(app, ["demo", *servers], env=UNSET)
    assert demo.exit_code == 1
    (line,) = demo.stderr.splitlines()
    # The demo makes its tokens before anything else.
    assert line.startswith(f"error: cannot reach PostgreSQL at dxpulse@127.0.0.1:{postgres}/dxpulse (")
    line = one_error_line(["history", "replay", "--kafka-bootstrap", f"127.0.0.1:{kafka}", *dsn])
    assert line.startswith(
        (f"error: cannot reach Kafka at 127.0.0.1:{kafka} (", "error: cannot reach PostgreSQL at ")
    )
