"""Unit tests of the local-stack manager: settings, generated configuration, pid files, install."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from dxpulse.kafka.topics import TopicLayoutError
from dxpulse.stack import install as installer
from dxpulse.stack import kafka as stack_kafka
from dxpulse.stack.cli import stack_app
from dxpulse.stack.config import (
    INCLUDE_LINE,
    StackPaths,
    alertmanager_spec,
    kafka_command,
    kafka_format_command,
    kafka_nodes,
    kafka_pom,
    kafka_server_properties,
    new_cluster_id,
    postgres_conf,
    prometheus_spec,
    service_env,
    service_specs,
)
from dxpulse.stack.errors import StackError
from dxpulse.stack.kafka import is_kafka_name
from dxpulse.stack.postgres import untraversable_parents
from dxpulse.stack.process import (
    PidRecord,
    is_alive,
    kill_process,
    launch,
    live_pid,
    parse_proc_stat,
    port_open,
    read_pid_file,
    start_time_of,
    stop_process,
    tail,
    write_pid_file,
)
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack
from dxpulse.stack.testing import stack_settings_for_tests


@pytest.fixture(autouse=True)
def _no_stack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's DXPULSE_STACK_* variables must not change what these tests see.
    for name in list(os.environ):
        if name.startswith("DXPULSE_STACK_"):
            monkeypatch.delenv(name)


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")


# --- settings --------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    s = StackSettings()
    assert s.state_dir == Path(".dxpulse")
    assert s.cache_dir == Path.home() / ".cache" / "dxpulse"
    assert s.kafka_version == "3.9.1"
    assert (s.kafka_port, s.kafka_controller_port, s.postgres_port) == (9092, 9095, 5433)
    assert (s.ingest_port, s.aggregate_web_port, s.alerts_web_port) == (8080, 6066, 6067)
    assert (s.prometheus_port, s.alertmanager_port, s.topic_partitions) == (9090, 9093, 6)
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert (s.kafka_brokers, s.kafka_port_step, s.kafka_sasl_ssl_port) == (1, 100, None)
    assert (s.replication_factor, s.min_insync_replicas) == (1, 1)
    assert s.database_url == "postgresql://dxpulse:dxpulse@127.0.0.1:5433/dxpulse"
    assert s.kafka_home == Path.home() / ".cache" / "dxpulse" / "kafka-3.9.1"
    assert s.alertmanager_config == Path("deploy/alertmanager/alertmanager.yml")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DXPULSE_STACK_KAFKA_PORT", "19092")
    monkeypatch.setenv("DXPULSE_STACK_POSTGRES_PORT", "15433")
    monkeypatch.setenv("DXPULSE_STACK_POSTGRES_DB", "other")
    monkeypatch.setenv("DXPULSE_STACK_CACHE_DIR", str(tmp_path))
    s = StackSettings()
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.database_url == "postgresql://dxpulse:dxpulse@127.0.0.1:15433/other"
    assert s.kafka_home == tmp_path / "kafka-3.9.1"


def test_settings_reject_bad_port_and_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DXPULSE_STACK_KAFKA_PORT", "70000")
    with pytest.raises(ValidationError):
        StackSettings()
    monkeypatch.delenv("DXPULSE_STACK_KAFKA_PORT")
    s = StackSettings()
    with pytest.raises(ValidationError):
        s.kafka_port = 1  # type: ignore[misc]


def test_every_setting_documents_its_variable() -> None:
    for name, info in StackSettings.model_fields.items():
        assert info.description is not None
        assert info.description.startswith(f"DXPULSE_STACK_{name.upper()}: "), name


def test_database_url_quotes_the_password() -> None:
    s = StackSettings(postgres_password="p@ss/w:rd")
    assert s.database_url == "postgresql://dxpulse:p%40ss%2Fw%3Ard@127.0.0.1:5433/dxpulse"


# --- generated configuration -----------------------------------------------------------------


def test_paths_are_absolute_under_the_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    paths = StackPaths.for_settings(StackSettings())
    assert paths.root == tmp_path / ".dxpulse"
    assert paths.log("kafka") == tmp_path / ".dxpulse" / "logs" / "kafka.log"
    assert paths.pid_file("ingest") == tmp_path / ".dxpulse" / "run" / "ingest.pid"
    assert paths.postgres_data == tmp_path / ".dxpulse" / "postgres" / "data"


def test_kafka_server_properties(tmp_path: Path) -> None:
    s = StackSettings(state_dir=tmp_path, kafka_port=1111, kafka_controller_port=2222)
    p = props(kafka_server_properties(s, StackPaths.for_settings(s)))
    assert p["node.id"] == "1"
    assert p["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert p["process.roles"] == "broker,controller"
    assert p["controller.quorum.voters"] == "1@127.0.0.1:2222"
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222"
    assert p["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1111"
    assert p["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert p["auto.create.topics.enable"] == "false"
    assert p["offsets.topic.replication.factor"] == "1"
    assert p["transaction.state.log.min.isr"] == "1"
    assert p["group.initial.rebalance.delay.ms"] == "0"


def test_kafka_commands_use_the_cached_jars(tmp_path: Path) -> None:
    s = StackSettings(state_dir=tmp_path / "st", cache_dir=tmp_path / "cache")
    paths = StackPaths.for_settings(s)
    (node,) = kafka_nodes(s, paths)
    assert node.properties == tmp_path / "st" / "kafka" / "server.properties"
    run = kafka_command(s, node)
    assert run[0] == "java"
    assert run[run.index("-cp") + 1] == f"{tmp_path / 'cache' / 'kafka-3.9.1' / 'libs'}/*"
    assert run[-2:] == ["kafka.Kafka", str(node.properties)]
    assert f"-Dlog4j.configuration=file:{node.log4j}" in run
    assert "-Xmx512m" in run
    fmt = kafka_format_command(s, node, "abc")
    assert fmt[fmt.index("-t") + 1] == "abc"
    assert fmt[fmt.index("-c") + 1] == str(node.properties)
    assert "kafka.tools.StorageTool" in fmt
    assert "--add-scram" not in fmt


def test_a_cluster_is_three_nodes_stepping_their_ports(tmp_path: Path) -> None:
    s = StackSettings(state_dir=tmp_path, kafka_brokers=3, kafka_port=1000, kafka_controller_port=2000)
    paths = StackPaths.for_settings(s)
    nodes = kafka_nodes(s, paths)
    assert [(n.node_id, n.name, n.port, n.controller_port) for n in nodes] == [
        (1, "kafka-1", 1000, 2000),
        (2, "kafka-2", 1100, 2100),
        (3, "kafka-3", 1200, 2200),
    ]
    assert [n.home for n in nodes] == [tmp_path / "kafka-1", tmp_path / "kafka-2", tmp_path / "kafka-3"]
    assert s.kafka_bootstrap == "127.0.0.1:1000,127.0.0.1:1100,127.0.0.1:1200"
    assert (s.replication_factor, s.min_insync_replicas) == (3, 2)
    expected = {
        "node.id": "2",
        "controller.quorum.voters": "1@127.0.0.1:2000,2@127.0.0.1:2100,3@127.0.0.1:2200",
        "listeners": "PLAINTEXT://127.0.0.1:1100,CONTROLLER://127.0.0.1:2100",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:1100",
        "log.dirs": str(tmp_path / "kafka-2" / "data"),
        # Kafka's own topics (consumer offsets) survive a broker's death too.
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
    }
    p = props(kafka_server_properties(s, paths, 2))
    assert {key: p[key] for key in expected} == expected
    assert "-Xmx384m" in kafka_command(s, nodes[0])
    env = service_env(s, paths)
    assert env["DXPULSE_KAFKA_BOOTSTRAP"] == s.kafka_bootstrap
    assert (env["DXPULSE_REPLICATION_FACTOR"], env["DXPULSE_MIN_INSYNC_REPLICAS"]) == ("3", "2")


@pytest.mark.parametrize(("brokers", "factor", "isr"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)])
def test_the_stack_replicates_as_its_brokers_allow(brokers: int, factor: int, isr: int) -> None:
    s = StackSettings(kafka_brokers=brokers)
    assert (s.replication_factor, s.min_insync_replicas) == (factor, isr)


def test_a_sasl_ssl_port_adds_a_listener_and_a_scram_user(tmp_path: Path) -> None:
    keystore = tmp_path / "broker.p12"
    s = StackSettings(
        state_dir=tmp_path,
        kafka_brokers=2,
        kafka_port=1000,
        kafka_controller_port=2000,
        kafka_sasl_ssl_port=3000,
        kafka_ssl_keystore=keystore,
        kafka_ssl_keystore_password="store",
        kafka_scram_password="s3cret",
    )
    paths = StackPaths.for_settings(s)
    assert s.kafka_sasl_ssl_bootstrap == "127.0.0.1:3000,127.0.0.1:3100"
    p = props(kafka_server_properties(s, paths, 2))
    assert p["listeners"] == (
        "PLAINTEXT://127.0.0.1:1100,SASL_SSL://127.0.0.1:3100,CONTROLLER://127.0.0.1:2100"
    )
    assert p["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1100,SASL_SSL://127.0.0.1:3100"
    assert p["listener.security.protocol.map"] == (
        "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"
    )
    assert p["inter.broker.listener.name"] == "PLAINTEXT"
    assert p["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert p["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    )
    assert (p["ssl.keystore.type"], p["ssl.keystore.location"]) == ("PKCS12", str(keystore))
    assert p["ssl.keystore.password"] == "store"
    fmt = kafka_format_command(s, kafka_nodes(s, paths)[1], "abc")
    assert fmt[fmt.index("--add-scram") + 1] == "SCRAM-SHA-512=[name=dxpulse,password=s3cret]"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "needs DXPULSE_STACK_KAFKA_SSL_KEYSTORE and DXPULSE_STACK_KAFKA_SCRAM_PASSWORD"),
        ({"kafka_ssl_keystore": "/k.p12"}, "needs DXPULSE_STACK_KAFKA_SSL_KEYSTORE and"),
        ({"kafka_ssl_keystore": "/k.p12", "kafka_scram_password": "a,b"}, "must not hold commas"),
    ],
)
def test_a_sasl_ssl_port_needs_a_keystore_and_a_password(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StackSettings(kafka_sasl_ssl_port=3000, **values)  # type: ignore[arg-type]


def test_kafka_names_are_the_single_broker_and_the_numbered_ones() -> None:
    assert [is_kafka_name(n) for n in ("kafka", "kafka-2", "kafka-12")] == [True, True, True]
    assert [is_kafka_name(n) for n in ("kafka-init", "kafkax", "ingest", "kafka-")] == [False] * 4


def test_test_settings_find_free_ports_for_every_broker(tmp_path: Path) -> None:
    s = stack_settings_for_tests(tmp_path, kafka_brokers=3)
    ports = [port for n in kafka_nodes(s, StackPaths.for_settings(s)) for port in (n.port, n.controller_port)]
    ports += [s.postgres_port, s.ingest_port, s.prometheus_port]
    assert len(set(ports)) == len(ports)
    assert all(not port_open(port) for port in ports)


def test_cluster_ids_are_16_random_bytes_base64url() -> None:
    ids = {new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    for cid in ids:
        assert len(cid) == 22
        assert not cid.startswith("-")  # kafka-storage would read it as an option
        assert "=" not in cid
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_kafka_pom_declares_broker_and_logging() -> None:
    root = ET.fromstring(kafka_pom("3.9.1"))
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    deps = {
        (d.findtext("m:artifactId", namespaces=ns), d.findtext("m:version", namespaces=ns))
        for d in root.iterfind("m:dependencies/m:dependency", ns)
    }
    assert deps == {("kafka_2.13", "3.9.1"), ("slf4j-reload4j", "1.7.36")}


def test_postgres_conf(tmp_path: Path) -> None:
    s = StackSettings(state_dir=tmp_path, postgres_port=15433)
    conf = postgres_conf(s, StackPaths.for_settings(s))
    assert "listen_addresses = '127.0.0.1'\n" in conf
    assert "port = 15433\n" in conf
    assert f"unix_socket_directories = '{tmp_path / 'postgres' / 'run'}'\n" in conf
    assert INCLUDE_LINE == "include_if_exists = 'dxpulse.conf'\n"


def test_postgres_socket_dir_stays_within_the_unix_path_limit(tmp_path: Path) -> None:
    short = StackPaths(tmp_path)
    assert short.postgres_socket_dir(5433) == tmp_path / "postgres" / "run"
    deep = StackPaths(tmp_path / ("x" * 120))
    socket_dir = deep.postgres_socket_dir(5433)
    assert len(str(socket_dir / ".s.PGSQL.5433")) <= 107
    assert socket_dir == deep.postgres_socket_dir(5433)  # stable across runs
    assert socket_dir != StackPaths(tmp_path / ("y" * 120)).postgres_socket_dir(5433)


def test_services_get_the_stack_environment(tmp_path: Path) -> None:
    s = StackSettings(state_dir=tmp_path, kafka_port=1, postgres_port=2, ingest_port=3)
    paths = StackPaths.for_settings(s)
    env = service_env(s, paths)
    assert env == {
        "DXPULSE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "DXPULSE_DATABASE_URL": "postgresql://dxpulse:dxpulse@127.0.0.1:2/dxpulse",
        "DXPULSE_TOPIC_PARTITIONS": "6",
        "DXPULSE_REPLICATION_FACTOR": "1",
        "DXPULSE_MIN_INSYNC_REPLICAS": "1",
        "DXPULSE_INGEST_PORT": "3",
        "DXPULSE_AGGREGATE_WEB_PORT": "6066",
        "DXPULSE_ALERTS_WEB_PORT": "6067",
        "DXPULSE_HISTORY_WEB_PORT": "6068",
        "DXPULSE_QUERY_PORT": "8081",
        "DXPULSE_SCOREBOARD_URL": "http://127.0.0.1:8081",
        "DXPULSE_STATE_DIR": str(tmp_path),
        "DXPULSE_ALERTMANAGER_URL": "http://127.0.0.1:9093",
    }
    assert (
        service_env(s.model_copy(update={"alertmanager_config": None}), paths)["DXPULSE_ALERTMANAGER_URL"]
        == ""
    )
    specs = {spec.name: spec for spec in service_specs(s, paths)}
    assert list(specs) == ["ingest", "aggregate", "alerts", "history", "query"]
    assert specs["ingest"].argv == (sys.executable, "-m", "services.ingest")
    assert (specs["ingest"].ready_port, specs["aggregate"].ready_port) == (3, 6066)
    assert (specs["alerts"].ready_port, specs["query"].ready_port) == (6067, 8081)
    assert specs["history"].argv == (sys.executable, "-m", "services.history")
    assert specs["history"].ready_port == 6068
    assert all(spec.env == env for spec in specs.values())


def test_monitoring_command_lines(tmp_path: Path) -> None:
    s = StackSettings(state_dir=tmp_path, prometheus_port=1, alertmanager_port=2)
    paths = StackPaths.for_settings(s)
    am = alertmanager_spec(s, paths, Path("am.yml"))
    assert am.argv[0] == "/usr/bin/prometheus-alertmanager"
    assert "--cluster.listen-address=" in am.argv
    assert "--web.listen-address=127.0.0.1:2" in am.argv
    assert f"--storage.path={tmp_path / 'alertmanager'}" in am.argv
    assert f"--config.file={Path('am.yml').absolute()}" in am.argv
    prom = prometheus_spec(s, paths, Path("prom.yml"))
    assert prom.argv[0] == "/usr/bin/prometheus"
    assert "--web.listen-address=127.0.0.1:1" in prom.argv
    assert (prom.ready_port, am.ready_port) == (1, 2)


# --- pid files and processes -----------------------------------------------------------------


def test_parse_proc_stat_copes_with_odd_command_names() -> None:
    fields = " ".join(str(n) for n in range(4, 30))
    state, start = parse_proc_stat(f"42 (a b) (c)) S {fields}")
    assert state == "S"
    assert start == 22  # field 22 of /proc/<pid>/stat


def test_pid_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run" / "x.pid"
    write_pid_file(path, PidRecord(123, 456, 789))
    assert read_pid_file(path) == PidRecord(123, 456, 789)
    write_pid_file(path, PidRecord(123))
    assert read_pid_file(path) == PidRecord(123, None, None)
    assert read_pid_file(tmp_path / "missing.pid") is None
    path.write_text("not a pid\n")
    assert read_pid_file(path) is None


def test_live_pid_keeps_a_running_process(tmp_path: Path) -> None:
    path = tmp_path / "me.pid"
    write_pid_file(path, PidRecord(os.getpid(), start_time_of(os.getpid())))
    assert live_pid(path) == PidRecord(os.getpid(), start_time_of(os.getpid()))
    assert path.exists()


@pytest.mark.parametrize(
    "content",
    [
        "999999999\n\n",  # no such process
        f"{os.getpid()}\n1\n",  # pid reused: same pid, another start time
        "garbage\n",
    ],
)
def test_live_pid_removes_stale_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "stale.pid"
    path.write_text(content)
    assert live_pid(path) is None
    assert not path.exists()


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while is_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Exited but not yet reaped: /proc still lists it, in state Z.
        assert Path(f"/proc/{child.pid}").exists()
        assert not is_alive(child.pid)
    finally:
        child.wait()


_LEADER_EXITS_FIRST = """
import ctypes, socket, sys, threading, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
print(server.getsockname()[1], flush=True)
threading.Thread(target=lambda: time.sleep(1.5)).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_process_whose_leader_thread_exited_first_is_alive_until_its_last_thread_ends() -> None:
    # As a Go server exiting: its leader turns zombie while other threads still hold its sockets.
    with subprocess.Popen(
        [sys.executable, "-c", _LEADER_EXITS_FIRST], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        deadline = time.monotonic() + 10
        while parse_proc_stat(Path(f"/proc/{child.pid}/stat").read_text())[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert port_open(port)
        assert is_alive(child.pid)
        while is_alive(child.pid):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert not port_open(port)


def test_launch_detaches_and_stop_kills_the_group(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "x.log"
    # The parent spawns a grandchild in its process group; stopping must take both.
    code = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "print('child', p.pid, flush=True); time.sleep(60)"
    )
    record = launch([sys.executable, "-c", code], log, {"X": "1"})
    try:
        assert is_alive(record.pid, record.start_time)
        assert os.getpgid(record.pid) == record.pid  # own process group
        deadline = time.monotonic() + 10
        while not tail(log, 1).startswith("child ") and time.monotonic() < deadline:
            time.sleep(0.05)
        grandchild = int(tail(log, 1).split()[1])
        assert stop_process(record, timeout_s=10)
    finally:
        stop_process(record, timeout_s=1)
    assert not is_alive(record.pid, record.start_time)
    deadline = time.monotonic() + 5
    while is_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_alive(grandchild)
    assert "dxpulse stack: starting" in log.read_text()
    assert not stop_process(record)  # already stopped: nothing to do


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(60)"
    )
    log = tmp_path / "stubborn.log"
    record = launch([sys.executable, "-c", code], log)
    try:
        deadline = time.monotonic() + 10
        while tail(log, 1) != "ready" and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        assert stop_process(record, timeout_s=0.5)
    finally:
        stop_process(record, timeout_s=0.1)
    assert not is_alive(record.pid, record.start_time)
    assert time.monotonic() - started < 5


def test_launch_reports_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="could not start /nonexistent/prog"):
        launch(["/nonexistent/prog"], tmp_path / "x.log")


def test_start_service_without_port_and_idempotent_stop(tmp_path: Path) -> None:
    lines: list[str] = []
    stack = Stack(StackSettings(state_dir=tmp_path), report=lines.append)
    status = stack.start_service("sleeper", ["sleep", "60"])
    try:
        assert status.running
        assert status.pid is not None
        again = stack.start_service("sleeper", ["sleep", "60"])
        assert again.pid == status.pid  # left alone
        assert "sleeper: already running" in " ".join(lines)
        assert [s.name for s in stack.status()][-1] == "sleeper"
    finally:
        assert stack.stop_service("sleeper")
    assert not stack.stop_service("sleeper")
    assert not stack.service_status("sleeper").running
    assert not (tmp_path / "run" / "sleeper.pid").exists()


def test_start_service_that_dies_fails_with_its_log(tmp_path: Path) -> None:
    stack = Stack(StackSettings(state_dir=tmp_path), report=lambda _: None)
    argv = [sys.executable, "-c", "import sys; print('boom here'); sys.exit(3)"]
    with pytest.raises(StackError, match="exited during startup") as info:
        stack.start_service("crasher", argv, ready_port=1)
    assert info.value.details is not None
    assert "boom here" in info.value.details
    assert not (tmp_path / "run" / "crasher.pid").exists()


def test_down_and_status_with_nothing_running(tmp_path: Path) -> None:
    stack = Stack(StackSettings(state_dir=tmp_path / "empty"), report=lambda _: None)
    stack.down()
    names = [s.name for s in stack.status()]
    assert names == [
        "kafka",
        "postgres",
        "ingest",
        "aggregate",
        "alerts",
        "history",
        "query",
        "prometheus",
        "alertmanager",
        "postgres-exporter",
    ]
    assert not any(s.running for s in stack.status())


def test_a_cluster_shows_each_broker(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path, kafka_brokers=3)
    stack = Stack(settings, report=lambda _: None)
    assert [s.name for s in stack.status()][:4] == ["kafka-1", "kafka-2", "kafka-3", "postgres"]
    whole = stack.kafka_status()
    assert (whole.name, whole.running, whole.address) == ("kafka", False, settings.kafka_bootstrap)
    assert not stack.kill_kafka_broker(2)
    with pytest.raises(StackError, match="no Kafka broker 4: the stack runs brokers 1 to 3"):
        stack.kill_kafka_broker(4)


def _sleeper(tmp_path: Path, name: str) -> PidRecord:
    return launch([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "logs" / f"{name}.log")


def test_kill_process_waits_until_the_process_is_gone(tmp_path: Path) -> None:
    record = _sleeper(tmp_path, "victim")
    kill_process(record)
    assert not is_alive(record.pid, record.start_time)


def test_brokers_of_other_settings_still_show_and_stop(tmp_path: Path) -> None:
    stack = Stack(StackSettings(state_dir=tmp_path), report=lambda _: None)
    record = _sleeper(tmp_path, "kafka-2")
    write_pid_file(stack.paths.pid_file("kafka-2"), record)
    try:
        shown = {s.name: s for s in stack.status()}
        assert shown["kafka-2"].running
        assert shown["kafka-2"].pid == record.pid
        stack.kill_kafka_broker(1)  # no broker 1 runs: nothing to do
        assert is_alive(record.pid, record.start_time)
        with pytest.raises(StackError, match="Kafka runs as kafka-2, started with another"):
            stack.start_kafka()
        stack.down()
        assert not is_alive(record.pid, record.start_time)
        assert "kafka-2" not in {s.name for s in stack.status()}
    finally:
        kill_process(record)


# --- prerequisites and install ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ('openjdk version "17.0.9" 2023-10-17', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("nothing useful", None),
    ],
)
def test_parse_java_major(text: str, major: int | None) -> None:
    assert installer.parse_java_major(text) == major


def test_newest_postgres_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for version in ("9.6", "15", "13"):
        (tmp_path / version / "bin").mkdir(parents=True)
        (tmp_path / version / "bin" / "initdb").touch()
    found = sorted((tmp_path).glob("*/bin/initdb"), key=installer.postgres_version_key)
    assert found[-1].parent == tmp_path / "15" / "bin"


def test_missing_packages_without_root_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "postgres_bin_dir", lambda: None)
    monkeypatch.setattr(installer, "is_root", lambda: False)
    assert "postgresql" in installer.missing_apt_packages()
    with pytest.raises(StackError, match="run as root or apt-get install postgresql"):
        installer.install_system_packages(lambda _: None)


def test_present_packages_need_no_apt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "missing_apt_packages", list)

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("apt-get must not run when everything is installed")

    monkeypatch.setattr("dxpulse.stack.install.subprocess.run", no_subprocess)
    lines: list[str] = []
    installer.install_system_packages(lines.append)
    assert lines == [f"system packages present: {', '.join(installer.APT_PACKAGES)}"]
    assert "prometheus-postgres-exporter" in installer.APT_PACKAGES


def test_missing_java_and_maven_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dxpulse.stack.install.shutil.which", lambda _: None)
    with pytest.raises(StackError, match=r"java not found: install a JDK 17 \(apt-get install"):
        installer.require_java()
    with pytest.raises(StackError, match="mvn not found"):
        installer.require_maven()


def test_cached_kafka_is_not_resolved_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = StackSettings(cache_dir=tmp_path)
    (s.kafka_home / "libs").mkdir(parents=True)
    (s.kafka_home / "libs" / "kafka_2.13-3.9.1.jar").touch()

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("maven must not run for a cached version")

    monkeypatch.setattr("dxpulse.stack.install.subprocess.run", no_subprocess)
    assert installer.resolve_kafka(s, lambda _: None) == s.kafka_home / "libs"
    assert installer.require_kafka_jars(s) == s.kafka_home / "libs"


def test_failed_resolve_leaves_no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = StackSettings(cache_dir=tmp_path, kafka_version="0.0.0-nope")
    monkeypatch.setattr(installer, "require_java", lambda: None)
    monkeypatch.setattr(installer, "require_maven", lambda: None)

    def failing_mvn(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        # Half a download, then failure: none of it may look like a cache.
        out = next(a for a in argv if a.startswith("-DoutputDirectory=")).split("=", 1)[1]
        Path(out).mkdir(parents=True)
        (Path(out) / "partial.jar").touch()
        return subprocess.CompletedProcess(argv, 1, "", "[ERROR] could not resolve")

    monkeypatch.setattr("dxpulse.stack.install.subprocess.run", failing_mvn)
    with pytest.raises(StackError, match=r"Maven could not resolve Kafka 0\.0\.0-nope") as info:
        installer.resolve_kafka(s, lambda _: None)
    assert "could not resolve" in (info.value.details or "")
    assert not s.kafka_home.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StackError, match="run `dxpulse stack install`"):
        installer.require_kafka_jars(s)


def test_untraversable_parents(tmp_path: Path) -> None:
    private = tmp_path / "private"
    (private / "inner").mkdir(parents=True)
    private.chmod(0o700)
    try:
        assert private in untraversable_parents(private / "inner" / "x")
        private.chmod(0o701)
        assert private not in untraversable_parents(private / "inner" / "x")
    finally:
        private.chmod(0o755)


# --- command line ----------------------------------------------------------------------------


def test_cli_help_lists_the_commands() -> None:
    result = CliRunner().invoke(stack_app, ["--help"])
    assert result.exit_code == 0
    for command in ("install", "up", "down", "status"):
        assert command in result.output
    up_help = CliRunner().invoke(stack_app, ["up", "--help"])
    assert "--no-services" in up_help.output


def test_cli_status_on_an_empty_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DXPULSE_STACK_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(stack_app, ["status"])
    assert result.exit_code == 3, result.output  # nothing runs
    assert "kafka" in result.output
    assert "stopped" in result.output


def test_cli_expected_failure_is_one_line_without_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DXPULSE_STACK_STATE_DIR", str(tmp_path))

    def fail(self: Stack, with_services: bool = True) -> None:
        raise StackError("kafka exited during startup: see kafka.log", "last line of the log")

    monkeypatch.setattr(Stack, "up", fail)
    result = CliRunner().invoke(stack_app, ["up", "--no-services"])
    assert result.exit_code == 1
    assert "error: kafka exited during startup: see kafka.log" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_bad_setting_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DXPULSE_STACK_KAFKA_PORT", "not-a-port")
    result = CliRunner().invoke(stack_app, ["status"])
    assert result.exit_code == 2
    assert "DXPULSE_STACK_KAFKA_PORT" in result.output


def test_cli_settings_that_contradict_each_other_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DXPULSE_STACK_KAFKA_SASL_SSL_PORT", "9999")
    result = CliRunner().invoke(stack_app, ["status"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: bad settings: DXPULSE_STACK_KAFKA_SASL_SSL_PORT needs DXPULSE_STACK_KAFKA_SSL_KEYSTORE and"
        " DXPULSE_STACK_KAFKA_SCRAM_PASSWORD"
    )


def test_sigterm_is_what_stop_sends_first() -> None:
    # Documented contract of down(): a graceful SIGTERM, not SIGKILL, for a cooperative process.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        assert stop_process(PidRecord(child.pid, start_time_of(child.pid)), timeout_s=10)
        assert child.wait(timeout=5) == 7
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_readiness_is_a_parameter(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    code = f"import pathlib, time; time.sleep(0.5); pathlib.Path({str(marker)!r}).touch(); time.sleep(60)"
    stack = Stack(StackSettings(state_dir=tmp_path / "state"), report=lambda _: None)
    try:
        status = stack.start_service("waiter", [sys.executable, "-c", code], ready=marker.exists)
        # start_service only returns once the custom check holds.
        assert marker.exists()
        assert status.ready
        assert status.address is None
    finally:
        stack.stop_service("waiter")
    try:
        with pytest.raises(StackError, match="not ready in 1 s"):
            stack.start_service("never", ["sleep", "60"], ready=lambda: False, timeout_s=1)
        # Not ready is not dead: it keeps running for the developer to look at, until down.
        assert stack.service_status("never").running
    finally:
        stack.stop_service("never")


def _layout_answers(
    monkeypatch: pytest.MonkeyPatch, answers: list[TopicLayoutError | list[str]]
) -> list[TopicLayoutError | list[str]]:
    """Make the stack's topic creation answer ``answers`` in turn, with no Kafka behind it."""

    async def registered(*_: object) -> None:
        return None

    async def answer(*_: object, **__: object) -> list[str]:
        given = answers.pop(0)
        if isinstance(given, TopicLayoutError):
            raise given
        return given

    monkeypatch.setattr(stack_kafka, "_wait_for_brokers", registered)
    monkeypatch.setattr(stack_kafka, "ensure_topics", answer)
    return answers


def test_topics_wait_for_a_cluster_whose_brokers_are_not_all_listed_yet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = TopicLayoutError("the Kafka cluster has 2 live brokers but DXPULSE_REPLICATION_FACTOR is 3", 2)
    answers = _layout_answers(monkeypatch, [short, short, ["dxpulse.reports"]])
    settings = StackSettings(kafka_brokers=3)
    created = asyncio.run(stack_kafka.ensure_stack_topics(settings, time.monotonic() + 60, lambda: True))
    assert created == ["dxpulse.reports"]
    assert answers == []


def test_a_wrong_layout_is_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = TopicLayoutError(
        "topic dxpulse.reports has replication factor 1 but DXPULSE_REPLICATION_FACTOR is 3", 3
    )
    answers = _layout_answers(monkeypatch, [wrong, ["never asked"]])
    settings = StackSettings(kafka_brokers=3)
    with pytest.raises(TopicLayoutError, match="replication factor 1"):
        asyncio.run(stack_kafka.ensure_stack_topics(settings, time.monotonic() + 60, lambda: True))
    assert answers == [["never asked"]]


def test_a_cluster_still_short_of_brokers_at_the_deadline_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    short = TopicLayoutError("the Kafka cluster has 2 live brokers but DXPULSE_REPLICATION_FACTOR is 3", 2)
    _layout_answers(monkeypatch, [short])
    with pytest.raises(TopicLayoutError, match="2 live brokers"):
        asyncio.run(
            stack_kafka.ensure_stack_topics(
                StackSettings(kafka_brokers=3), time.monotonic() - 1, lambda: True
            )
        )
