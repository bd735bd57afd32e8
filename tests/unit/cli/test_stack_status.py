"""``dxpulse stack status``: exit 3 when a component ``up`` starts is not running, and its --json."""

from __future__ import annotations

import json
import os
import socket
from contextlib import ExitStack
from pathlib import Path

from typer.testing import CliRunner

from dxpulse.cli.main import app
from dxpulse.stack.config import StackPaths
from dxpulse.stack.process import PidRecord, start_time_of, write_pid_file
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack


def test_a_stack_that_does_not_run_exits_3_and_lists_every_component(tmp_path: Path) -> None:
    env = {"DXPULSE_STACK_STATE_DIR": str(tmp_path), "DXPULSE_STACK_PROMETHEUS": "false"}
    result = CliRunner().invoke(app, ["stack", "status", "--json"], env=env)
    assert result.exit_code == 3, result.output
    components = [json.loads(line) for line in result.stdout.splitlines()]
    names = [c["name"] for c in components]
    assert names[:3] == ["kafka", "postgres", "ingest"]
    assert {c["state"] for c in components} == {"stopped"}
    assert all(c["pid"] is None for c in components)
    table = CliRunner().invoke(app, ["stack", "status"], env=env)
    assert table.exit_code == 3
    assert "stopped" in table.stdout


def test_what_up_starts_follows_the_settings(tmp_path: Path) -> None:
    plain = Stack(StackSettings(state_dir=tmp_path, prometheus=False, alertmanager_config=None))
    assert plain.components_up_starts() == {
        "kafka",
        "postgres",
        "ingest",
        "aggregate",
        "alerts",
        "history",
        "query",
    }
    cluster = Stack(StackSettings(state_dir=tmp_path, kafka_brokers=3))
    assert {"kafka-1", "kafka-3", "prometheus", "alertmanager"} <= cluster.components_up_starts()


def test_a_stack_whose_components_all_serve_exits_0(tmp_path: Path) -> None:
    """Every component 'runs' as this process, each with a listening socket on its port."""
    names = {"kafka": "KAFKA", "ingest": "INGEST", "aggregate": "AGGREGATE_WEB", "alerts": "ALERTS_WEB"}
    names |= {"history": "HISTORY_WEB", "query": "QUERY", "alertmanager": "ALERTMANAGER"}
    me = PidRecord(os.getpid(), start_time_of(os.getpid()))
    paths = StackPaths(tmp_path)
    env = {"DXPULSE_STACK_STATE_DIR": str(tmp_path), "DXPULSE_STACK_PROMETHEUS": "false"}
    with ExitStack() as sockets:
        for name in [*names, "postgres"]:
            sock = sockets.enter_context(socket.create_server(("127.0.0.1", 0)))
            port = sock.getsockname()[1]
            if name == "postgres":
                paths.postmaster_pid.parent.mkdir(parents=True)
                paths.postmaster_pid.write_text(f"{me.pid}\n{paths.postgres_data}\n0\n{port}\n")
                env["DXPULSE_STACK_POSTGRES_PORT"] = str(port)
            else:
                write_pid_file(paths.pid_file(name), PidRecord(me.pid, me.start_time, port))
                env[f"DXPULSE_STACK_{names[name]}_PORT"] = str(port)
        result = CliRunner().invoke(app, ["stack", "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    states = {c["name"]: c["state"] for c in map(json.loads, result.stdout.splitlines())}
    assert states["kafka"] == states["postgres"] == states["query"] == "running"
