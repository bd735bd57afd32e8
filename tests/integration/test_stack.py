"""Integration tests of the local stack: real Kafka and PostgreSQL on free ports in a temp dir."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from typer.testing import CliRunner, Result

from dxpulse.cli.main import app as cli_app
from dxpulse.domain.tokens import hash_token
from dxpulse.kafka.topics import ROLLUPS, TOPICS
from dxpulse.stack import ServiceSpec, Stack, StackError, StackSettings
from dxpulse.stack.config import KAFKA
from dxpulse.stack.process import is_alive, port_open, read_pid_file
from dxpulse.stack.testing import free_ports, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    with running_stack(tmp_path_factory.mktemp("stack")) as settings:
        yield settings


async def test_topics_exist_with_partitions_and_policies(stack_settings: StackSettings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([spec.name for spec in TOPICS])
        partitions = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
        assert partitions == {spec.name: stack_settings.topic_partitions for spec in TOPICS}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, ROLLUPS, None)])
        configs = {
            name: value
            for response in responses
            for _err, _msg, _type, _name, entries in response.resources
            for name, value, *_ in entries
        }
        assert configs["cleanup.policy"] == "compact"
    finally:
        await admin.close()


async def test_migrations_created_rollup_history(stack_settings: StackSettings) -> None:
    conn = await asyncpg.connect(stack_settings.database_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.rollup_history') IS NOT NULL")
        applied = await conn.fetch("SELECT name FROM schema_migrations")
        assert "0001_history.sql" in {row["name"] for row in applied}
    finally:
        await conn.close()


def test_postgres_listens_on_loopback_with_a_password(stack_settings: StackSettings) -> None:
    assert port_open(stack_settings.postgres_port)
    assert not port_open(stack_settings.postgres_port, host=_non_loopback_address())


def _non_loopback_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.2"


async def test_wrong_password_is_refused(stack_settings: StackSettings) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            host="127.0.0.1",
            port=stack_settings.postgres_port,
            user=stack_settings.postgres_user,
            password="wrong",
            database=stack_settings.postgres_db,
        )


def test_up_twice_is_idempotent_and_down_stops_everything(tmp_path: Path) -> None:
    http_port = free_ports(1)[0]
    dummy = ServiceSpec(
        "dummy",
        (sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(http_port)),
        ready_port=http_port,
    )
    lines: list[str] = []
    with running_stack(tmp_path, with_services=True, services=[dummy], report=lines.append) as s:
        stack = Stack(s, report=lines.append)
        first = {c.name: c for c in stack.status()}
        assert first["kafka"].running
        assert first["kafka"].ready
        assert first["postgres"].running
        assert first["postgres"].ready
        assert first["dummy"].ready
        assert first["dummy"].address == f"127.0.0.1:{http_port}"

        lines.clear()
        stack.up(with_services=True, services=[dummy])
        second = {c.name: c for c in stack.status()}
        assert {n: c.pid for n, c in second.items()} == {n: c.pid for n, c in first.items()}
        assert "kafka: already running" in "\n".join(lines)
        assert "postgres: already running" in "\n".join(lines)
        assert not any("created topics" in line or "migrations" in line for line in lines)

        pids = [c.pid for c in second.values() if c.pid is not None]
        assert len(pids) == 3
    assert all(not is_alive(pid) for pid in pids)
    after = Stack(s, report=lines.append).status()
    assert not any(c.running for c in after)
    for port in (s.kafka_port, s.kafka_controller_port, s.postgres_port, http_port):
        assert not port_open(port)
    assert read_pid_file(Stack(s).paths.pid_file(KAFKA)) is None
    Stack(s, report=lines.append).down()  # nothing running: still fine


def test_restart_keeps_data_and_cleans_stale_pid_files(tmp_path: Path) -> None:
    # A deep state dir also exercises the short socket folder (unix socket paths are capped).
    with running_stack(tmp_path / ("d" * 80)) as s:
        stack = Stack(s, report=lambda _: None)
        socket_dir = stack.paths.postgres_socket_dir(s.postgres_port)
        assert not socket_dir.is_relative_to(stack.paths.root)
        assert (socket_dir / f".s.PGSQL.{s.postgres_port}").exists()
        cluster_id = stack.paths.kafka_cluster_id.read_text()
        stack.down()
        # A pid file left by a crash, naming a process that no longer exists.
        stack.paths.pid_file(KAFKA).write_text("999999999\n\n")
        stack.paths.pid_file("ghost").write_text("999999999\n\n")
        stack.up(with_services=False)
        assert stack.paths.kafka_cluster_id.read_text() == cluster_id  # not re-formatted
        kafka = stack.kafka_status()
        assert kafka.ready
        assert kafka.pid != 999999999
        # up() ends with a status pass, which found the ghost dead and removed its file.
        assert not stack.paths.pid_file("ghost").exists()
        assert "ghost" not in {c.name for c in stack.status()}
    assert not socket_dir.exists()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        stack = Stack(StackSettings(state_dir=tmp_path, kafka_port=port), report=lambda _: None)
        stack.install()
        with pytest.raises(StackError, match=f"port {port} is taken"):
            stack.start_kafka()
    assert stack.kafka_status().pid is None


def test_monitoring_processes_start_and_stop(tmp_path: Path) -> None:
    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text("global:\n  scrape_interval: 15s\n")
    alertmanager_yml = tmp_path / "alertmanager.yml"
    alertmanager_yml.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    ports = free_ports(2)
    settings = StackSettings(
        state_dir=tmp_path / "state", prometheus_port=ports[0], alertmanager_port=ports[1]
    )
    stack = Stack(settings, report=lambda _: None)
    try:
        prom = stack.start_prometheus(prometheus_yml)
        am = stack.start_alertmanager(alertmanager_yml)
        assert prom.ready
        assert am.ready
    finally:
        stack.down()
    assert not port_open(ports[0])
    assert not port_open(ports[1])


async def test_commands_run_beside_the_stack_use_it(stack_settings: StackSettings, tmp_path: Path) -> None:
    """Only DXPULSE_STACK_STATE_DIR names the stack: its ports (free ones) come from its pid files."""
    env = {
        "DXPULSE_STACK_STATE_DIR": str(stack_settings.state_dir),
        "DXPULSE_KAFKA_BOOTSTRAP": None,
        "DXPULSE_DATABASE_URL": None,
    }
    reporters = tmp_path / "reporters.txt"
    reporters.write_text("# a vendor's sites\nprovince:79\nprovince:01\nministry:MIC\nprovince:79\n")

    def cli(*args: str) -> Result:
        return CliRunner().invoke(cli_app, list(args), env=env)

    created = await asyncio.to_thread(
        cli, "token", "create", "--from-file", str(reporters), "--label", "bulk"
    )
    assert created.exit_code == 0, created.output
    assert f"using PostgreSQL of the local stack in {stack_settings.state_dir.absolute()}" in created.stderr
    tokens = dict(line.split("\t") for line in created.stdout.splitlines())
    assert list(tokens) == ["province:79", "province:01", "ministry:MIC"]  # each reporter once

    listed = await asyncio.to_thread(cli, "token", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {(r["reporter"], r["label"]) for r in rows} >= {(s, "bulk") for s in tokens}
    conn = await asyncpg.connect(stack_settings.database_url)
    try:
        for subject, secret in tokens.items():
            stored = await conn.fetchval(
                "SELECT subject FROM api_tokens WHERE token_hash = $1", hash_token(secret)
            )
            assert stored == subject
    finally:
        await conn.close()

    rollups = await asyncio.to_thread(cli, "rollups", "--json")
    assert rollups.exit_code == 0, rollups.output
    assert rollups.stdout == ""  # nothing aggregated on this stack; stdout stays JSON only
    assert f"using Kafka of the local stack in {stack_settings.state_dir.absolute()}" in rollups.stderr
