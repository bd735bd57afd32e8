"""Commands run where a local stack runs talk to that stack; an option or its variable still wins.

The stack is its state folder as ``dxpulse stack up`` leaves it: pid files naming a live process (this
test's own) and the ports it serves on, here closed ones, so the error line shows where the command
went.
"""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from dxpulse.cli.main import app
from dxpulse.stack.config import StackPaths
from dxpulse.stack.endpoints import running_endpoints
from dxpulse.stack.process import PidRecord, start_time_of, write_pid_file
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.testing import free_ports

ME = PidRecord(os.getpid(), start_time_of(os.getpid()))


def fake_stack(
    state_dir: Path, *, kafka: int | None = None, postgres: int | None = None, ingest: int | None = None
) -> StackPaths:
    """A state folder whose components run (as this process) on the given ports."""
    paths = StackPaths(state_dir)
    if kafka is not None:
        write_pid_file(paths.pid_file("kafka"), PidRecord(ME.pid, ME.start_time, kafka))
    if ingest is not None:
        write_pid_file(paths.pid_file("ingest"), PidRecord(ME.pid, ME.start_time, ingest))
    if postgres is not None:
        paths.postmaster_pid.parent.mkdir(parents=True, exist_ok=True)
        paths.postmaster_pid.write_text(f"{ME.pid}\n{paths.postgres_data}\n1700000000\n{postgres}\n/tmp\n")
    return paths


def run(args: list[str], state_dir: Path, **env: str | None) -> tuple[int, str, str]:
    base: dict[str, str | None] = {
        "DXPULSE_STACK_STATE_DIR": str(state_dir),
        "DXPULSE_KAFKA_BOOTSTRAP": None,
        "DXPULSE_DATABASE_URL": None,
        "DXPULSE_INGEST_URL": None,
    }
    result = CliRunner().invoke(app, args, env={**base, **env})
    return result.exit_code, result.stdout, result.stderr


def test_the_ports_come_from_the_running_processes(tmp_path: Path) -> None:
    kafka, postgres, ingest = free_ports(3)
    fake_stack(tmp_path, kafka=kafka, postgres=postgres, ingest=ingest)
    settings = StackSettings(state_dir=tmp_path, postgres_user="me", postgres_password="p@ss")
    found = running_endpoints(settings)
    assert found.kafka_bootstrap == f"127.0.0.1:{kafka}"
    assert found.database_url == f"postgresql://me:p%40ss@127.0.0.1:{postgres}/dxpulse"
    assert found.ingest_url == f"http://127.0.0.1:{ingest}"
    assert found.query_url is None
    assert running_endpoints(StackSettings(state_dir=tmp_path / "none")).running is False


def test_a_dead_process_is_not_a_running_stack(tmp_path: Path) -> None:
    paths = StackPaths(tmp_path)
    write_pid_file(paths.pid_file("kafka"), PidRecord(ME.pid, (ME.start_time or 0) + 1, free_ports(1)[0]))
    assert running_endpoints(StackSettings(state_dir=tmp_path)).kafka_bootstrap is None


def test_kafka_commands_use_the_local_stack_and_say_so(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    fake_stack(tmp_path, kafka=port)
    for command in (["rollups", "--json"], ["alerts"], ["status"]):
        code, stdout, stderr = run(command, tmp_path, DXPULSE_STACK_KAFKA_PORT="1")
        assert code == 1
        assert stdout == ""
        using, error = stderr.splitlines()
        assert using == f"using Kafka of the local stack in {tmp_path}: 127.0.0.1:{port}"
        assert error.startswith(f"error: cannot reach Kafka at 127.0.0.1:{port} (")


def test_postgresql_and_ingest_commands_use_the_local_stack(tmp_path: Path) -> None:
    postgres, ingest = free_ports(2)
    fake_stack(tmp_path, postgres=postgres, ingest=ingest)
    code, _, stderr = run(["token", "list", "--json"], tmp_path, DXPULSE_STACK_POSTGRES_USER="dev")
    assert code == 1
    assert f"cannot reach PostgreSQL at dev@127.0.0.1:{postgres}/dxpulse (" in stderr
    reports = tmp_path / "reports.jsonl"
    reports.write_text("{}\n", encoding="utf-8")
    code, _, stderr = run(["send", str(reports), "--token", "dxp_a_b"], tmp_path)
    assert code == 1
    assert f"cannot reach the ingest at http://127.0.0.1:{ingest} (" in stderr


def test_an_option_or_its_variable_wins_over_the_local_stack(tmp_path: Path) -> None:
    stack_port, given = free_ports(2)
    fake_stack(tmp_path, kafka=stack_port)
    for args, env in [
        (["rollups", "--kafka-bootstrap", f"127.0.0.1:{given}"], {}),
        (["rollups"], {"DXPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{given}"}),
    ]:
        code, _, stderr = run(args, tmp_path, **env)
        assert code == 1
        (line,) = stderr.splitlines()  # no "using the local stack" line
        assert line.startswith(f"error: cannot reach Kafka at 127.0.0.1:{given} (")


def test_without_a_running_stack_the_stack_settings_ports_are_used(tmp_path: Path) -> None:
    kafka, postgres = free_ports(2)
    env = {"DXPULSE_STACK_KAFKA_PORT": str(kafka), "DXPULSE_STACK_POSTGRES_PORT": str(postgres)}
    code, _, stderr = run(["rollups"], tmp_path, **env)
    assert code == 1
    (line,) = stderr.splitlines()
    assert line.startswith(f"error: cannot reach Kafka at 127.0.0.1:{kafka} (")
    code, _, stderr = run(["token", "list"], tmp_path, **env)
    assert f"cannot reach PostgreSQL at dxpulse@127.0.0.1:{postgres}/dxpulse (" in stderr


def test_a_bad_stack_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, stdout, stderr = run(["rollups"], tmp_path, DXPULSE_STACK_KAFKA_PORT="abc")
    assert code == 2
    assert stdout == ""
    assert stderr.startswith("error: bad setting DXPULSE_STACK_KAFKA_PORT: ")
