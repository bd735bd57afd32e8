"""Pure configuration of the local stack: file layout, config file text and command lines."""

from __future__ import annotations

import base64
import hashlib
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dxpulse.stack.settings import StackSettings

# Linux caps a unix socket path (sun_path) at 108 bytes including the trailing NUL.
_MAX_SOCKET_PATH = 107

KAFKA = "kafka"
POSTGRES = "postgres"
PROMETHEUS = "prometheus"
ALERTMANAGER = "alertmanager"
POSTGRES_EXPORTER = "postgres-exporter"
INGEST = "ingest"
AGGREGATE = "aggregate"
ALERTS = "alerts"
HISTORY = "history"
QUERY = "query"
SERVICE_NAMES: tuple[str, ...] = (INGEST, AGGREGATE, ALERTS, HISTORY, QUERY)

PROMETHEUS_BIN = Path("/usr/bin/prometheus")
PROMETHEUS_RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"
"""The pipeline's recording and alerting rules, shared with docker-compose and Kubernetes."""
ALERTMANAGER_BIN = Path("/usr/bin/prometheus-alertmanager")
POSTGRES_EXPORTER_BIN = Path("/usr/bin/prometheus-postgres-exporter")


@dataclass(frozen=True)
class StackPaths:
    """Where every file of one stack lives, all under its (absolute) state directory."""

    root: Path

    @classmethod
    def for_settings(cls, settings: StackSettings) -> StackPaths:
        # Absolute, because child processes run with other working directories.
        return cls(settings.state_dir.expanduser().absolute())

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def log(self, name: str) -> Path:
        """Log file of a component (its stdout and stderr)."""
        return self.logs / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        """Pid file of a component the stack started itself (not PostgreSQL: it has its own)."""
        return self.run / f"{name}.pid"

    @property
    def kafka_dir(self) -> Path:
        """The single broker's folder; with several, broker n has ``kafka-n`` beside it."""
        return self.root / "kafka"

    @property
    def kafka_cluster_id(self) -> Path:
        """The stack's KRaft cluster id, shared by its brokers."""
        return self.kafka_dir / "cluster-id"

    @property
    def postgres_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def postgres_data(self) -> Path:
        return self.postgres_dir / "data"

    @property
    def postmaster_pid(self) -> Path:
        return self.postgres_data / "postmaster.pid"

    def postgres_socket_dir(self, port: int) -> Path:
        """Unix socket folder of PostgreSQL: in the state dir, unless that path is too long."""
        preferred = self.postgres_dir / "run"
        if len(str(preferred / f".s.PGSQL.{port}").encode()) <= _MAX_SOCKET_PATH:
            return preferred
        # Deep state dirs (pytest's tmp dirs) overflow sun_path: use a short, stable path instead.
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"dxpulse-pg-{digest}"

    @property
    def prometheus_data(self) -> Path:
        return self.root / "prometheus"

    @property
    def prometheus_config(self) -> Path:
        """The prometheus.yml ``up`` generates from the stack's services."""
        return self.root / "prometheus.yml"

    @property
    def alertmanager_data(self) -> Path:
        return self.root / "alertmanager"


@dataclass(frozen=True)
class KafkaNode:
    """One Kafka process of the stack: a broker and a KRaft controller, with its ports and files.

    A single broker is the component ``kafka`` in ``kafka/``; in a cluster, node n is ``kafka-n``
    in ``kafka-n/``, so a stack's data does not change with the number of brokers.
    """

    node_id: int
    name: str
    port: int
    controller_port: int
    sasl_ssl_port: int | None
    home: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.home / "log4j.properties"


def kafka_node_name(node_id: int, brokers: int) -> str:
    """The component name of Kafka node ``node_id``: its pid file and log."""
    return KAFKA if brokers == 1 else f"{KAFKA}-{node_id}"


def kafka_nodes(settings: StackSettings, paths: StackPaths) -> list[KafkaNode]:
    """The stack's Kafka nodes, ids from 1; broker n's ports are the first's plus (n - 1) steps."""
    count = settings.kafka_brokers
    ports = settings.kafka_ports(settings.kafka_port)
    controllers = settings.kafka_ports(settings.kafka_controller_port)
    first_sasl = settings.kafka_sasl_ssl_port
    sasl: list[int | None] = [None] * count if first_sasl is None else [*settings.kafka_ports(first_sasl)]
    names = [kafka_node_name(index + 1, count) for index in range(count)]
    return [
        KafkaNode(index + 1, name, ports[index], controllers[index], sasl[index], paths.root / name)
        for index, name in enumerate(names)
    ]


@dataclass(frozen=True)
class ServiceSpec:
    """A long-running process the stack starts, stops and reports on.

    ``ready_port`` is the address shown by ``status`` and, unless ``ready`` is given, the
    readiness check (a TCP connect). With neither, a process that is still alive half a second
    after starting counts as ready.
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_port: int | None = None
    cwd: Path | None = None
    ready: Callable[[], bool] | None = field(default=None, compare=False)


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (what kafka-storage makes)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # kafka-storage's argument parser takes an id starting with '-' for an option (Kafka's
        # own Uuid.randomUuid skips such ids for the same reason).
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_pom(version: str) -> str:
    """A throwaway Maven project whose runtime dependencies are exactly the broker's jars."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.dxpulse</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <!-- Kafka 3.x logs through slf4j to log4j 1; reload4j is the maintained log4j 1. -->
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
"""


SCRAM_MECHANISM = "SCRAM-SHA-512"
"""The SASL mechanism of the stack's SASL_SSL port."""


def kafka_server_properties(settings: StackSettings, paths: StackPaths, node_id: int = 1) -> str:
    """server.properties of KRaft broker+controller ``node_id`` of the stack, bound to 127.0.0.1."""
    nodes = kafka_nodes(settings, paths)
    node = nodes[node_id - 1]
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    listeners = [f"PLAINTEXT://127.0.0.1:{node.port}"]
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    if node.sasl_ssl_port is not None:
        listeners.append(f"SASL_SSL://127.0.0.1:{node.sasl_ssl_port}")
        protocols.append("SASL_SSL:SASL_SSL")
    lines = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": ",".join([*listeners, f"CONTROLLER://127.0.0.1:{node.controller_port}"]),
        "advertised.listeners": ",".join(listeners),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(protocols),
        "log.dirs": str(node.data),
        # Kafka's own topics get the replicas dxpulse's get (1 with one broker: no more can exist).
        "offsets.topic.replication.factor": str(settings.replication_factor),
        "transaction.state.log.replication.factor": str(settings.replication_factor),
        "transaction.state.log.min.isr": str(settings.min_insync_replicas),
        # Consumers in tests and a freshly started stack should not wait 3 s for a rebalance.
        "group.initial.rebalance.delay.ms": "0",
        # Topics are created by ensure_topics with explicit partitions and policies, never by typo.
        "auto.create.topics.enable": "false",
    }
    keystore, keystore_password = settings.kafka_ssl_keystore, settings.kafka_ssl_keystore_password
    if node.sasl_ssl_port is not None and keystore is not None:
        lines |= {
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            # The brokers' side of SCRAM needs no credentials: the users are in the metadata log.
            f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(keystore.expanduser().absolute()),
        }
        if keystore_password is not None:
            lines["ssl.keystore.password"] = keystore_password.get_secret_value()
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def kafka_log4j_properties() -> str:
    """log4j 1 configuration: everything to stdout, which the stack redirects to kafka.log."""
    return (
        "log4j.rootLogger=INFO, stdout\n"
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        # The state-change and request loggers are chatty at INFO and say nothing useful here.
        "log4j.logger.state.change.logger=WARN\n"
        "log4j.logger.kafka.request.logger=WARN\n"
        "log4j.logger.org.apache.kafka.clients.NetworkClient=WARN\n"
    )


def _java(settings: StackSettings, node: KafkaNode, *jvm_options: str) -> list[str]:
    libs = settings.kafka_home / "libs"
    return [
        "java",
        *jvm_options,
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{node.log4j}",
        "-cp",
        # Java expands the trailing '*' itself, so no shell is involved.
        f"{libs}/*",
    ]


def kafka_format_command(settings: StackSettings, node: KafkaNode, cluster_id: str) -> list[str]:
    """Formats the KRaft storage in log.dirs; --ignore-formatted keeps a second run harmless.

    With a SASL_SSL port, the SCRAM user goes into the metadata the storage starts with.
    """
    scram = []
    password = settings.kafka_scram_password
    if settings.kafka_sasl_ssl_port is not None and password is not None:
        user = f"name={settings.kafka_scram_username},password={password.get_secret_value()}"
        scram = ["--add-scram", f"{SCRAM_MECHANISM}=[{user}]"]
    return [
        *_java(settings, node),
        "kafka.tools.StorageTool",
        "format",
        "--ignore-formatted",
        "-t",
        cluster_id,
        "-c",
        str(node.properties),
        *scram,
    ]


def kafka_command(settings: StackSettings, node: KafkaNode) -> list[str]:
    """Runs one broker in the foreground; the stack backgrounds it."""
    # A development broker: a small heap, and die rather than limp on after an OOM. Several share
    # a machine, so each gets less.
    heap = "512m" if settings.kafka_brokers == 1 else "384m"
    return [
        *_java(settings, node, "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError"),
        "kafka.Kafka",
        str(node.properties),
    ]


def postgres_conf(settings: StackSettings, paths: StackPaths) -> str:
    """Settings included from postgresql.conf, rewritten at every start so ports can change."""
    socket_dir = str(paths.postgres_socket_dir(settings.postgres_port)).replace("'", "''")
    return (
        # Only loopback: a development database with a well-known password.
        "listen_addresses = '127.0.0.1'\n"
        f"port = {settings.postgres_port}\n"
        # Not /var/run/postgresql, which only exists (writable) with the Debian cluster set up.
        f"unix_socket_directories = '{socket_dir}'\n"
        "password_encryption = 'scram-sha-256'\n"
        # Local data that can be rebuilt: trade crash durability of the last commits for speed.
        "synchronous_commit = off\n"
    )


INCLUDE_LINE = "include_if_exists = 'dxpulse.conf'\n"
"""Appended once to postgresql.conf by initdb time, so dxpulse.conf overrides the defaults."""


def service_env(settings: StackSettings, paths: StackPaths) -> dict[str, str]:
    """Environment every dxpulse service gets, pointing it at this stack."""
    return {
        "DXPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "DXPULSE_DATABASE_URL": settings.database_url,
        "DXPULSE_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "DXPULSE_REPLICATION_FACTOR": str(settings.replication_factor),
        "DXPULSE_MIN_INSYNC_REPLICAS": str(settings.min_insync_replicas),
        "DXPULSE_INGEST_PORT": str(settings.ingest_port),
        "DXPULSE_AGGREGATE_WEB_PORT": str(settings.aggregate_web_port),
        "DXPULSE_ALERTS_WEB_PORT": str(settings.alerts_web_port),
        "DXPULSE_HISTORY_WEB_PORT": str(settings.history_web_port),
        "DXPULSE_QUERY_PORT": str(settings.query_port),
        # The query service serves the web scoreboard the alerts link to (docs/guide/scoreboard.md).
        "DXPULSE_SCOREBOARD_URL": f"http://127.0.0.1:{settings.query_port}",
        "DXPULSE_STATE_DIR": str(paths.root),
        # Empty tells the alerts service to push nowhere when the stack runs no Alertmanager.
        "DXPULSE_ALERTMANAGER_URL": (
            f"http://127.0.0.1:{settings.alertmanager_port}" if settings.alertmanager_config else ""
        ),
    }


def service_specs(settings: StackSettings, paths: StackPaths) -> list[ServiceSpec]:
    """The dxpulse services, run with this interpreter so they see the same packages."""
    env = service_env(settings, paths)
    ports = {
        INGEST: settings.ingest_port,
        AGGREGATE: settings.aggregate_web_port,
        ALERTS: settings.alerts_web_port,
        HISTORY: settings.history_web_port,
        QUERY: settings.query_port,
    }
    return [
        ServiceSpec(name, (sys.executable, "-m", f"services.{name}"), env, ports[name])
        for name in SERVICE_NAMES
    ]


def prometheus_spec(settings: StackSettings, paths: StackPaths, config: Path) -> ServiceSpec:
    """Prometheus with its TSDB in the state dir."""
    return ServiceSpec(
        PROMETHEUS,
        (
            str(PROMETHEUS_BIN),
            f"--config.file={config.absolute()}",
            f"--storage.tsdb.path={paths.prometheus_data}",
            f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
            # Lets tests and developers reload rules with POST /-/reload.
            "--web.enable-lifecycle",
        ),
        ready_port=settings.prometheus_port,
    )


def prometheus_config(
    settings: StackSettings, services: Sequence[ServiceSpec], rules: Path | None = PROMETHEUS_RULES
) -> str:
    """prometheus.yml scraping /metrics of every service that has a port, job named after it.

    Derived from the specs ``up`` starts, so a service added there is scraped without more work.
    """
    interval = f"{settings.prometheus_scrape_interval_s:g}s"
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": spec.name,
                "metrics_path": "/metrics",
                # The DxpulseServiceDown alert selects dxpulse's own jobs by this label.
                "static_configs": [
                    {"targets": [f"127.0.0.1:{spec.ready_port}"], "labels": {"system": "dxpulse"}}
                ],
            }
            for spec in services
            if spec.ready_port is not None
        ],
    }
    if rules is not None and rules.is_dir():
        config["rule_files"] = [str(rules.absolute() / "*.yml")]
    if settings.alertmanager_config is not None:
        targets = [f"127.0.0.1:{settings.alertmanager_port}"]
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": targets}]}]}
    header = "# Generated by `dxpulse stack up` from the stack's services; edits are overwritten.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


def alertmanager_spec(settings: StackSettings, paths: StackPaths, config: Path) -> ServiceSpec:
    """Alertmanager with its silences in the state dir and clustering off."""
    return ServiceSpec(
        ALERTMANAGER,
        (
            str(ALERTMANAGER_BIN),
            f"--config.file={config.absolute()}",
            f"--storage.path={paths.alertmanager_data}",
            f"--web.listen-address=127.0.0.1:{settings.alertmanager_port}",
            # Empty disables the gossip cluster, which would otherwise bind 0.0.0.0:9094.
            "--cluster.listen-address=",
        ),
        ready_port=settings.alertmanager_port,
    )


def postgres_exporter_spec(settings: StackSettings) -> ServiceSpec:
    """Debian's PostgreSQL exporter on the stack's database (``pg_up`` and the pg_* metrics)."""
    return ServiceSpec(
        POSTGRES_EXPORTER,
        (str(POSTGRES_EXPORTER_BIN), f"--web.listen-address=127.0.0.1:{settings.postgres_exporter_port}"),
        # The DSN in the environment, not on the command line every user of the machine can read;
        # the stack's PostgreSQL listens without TLS on 127.0.0.1.
        {"DATA_SOURCE_NAME": f"{settings.database_url}?sslmode=disable"},
        ready_port=settings.postgres_exporter_port,
    )
