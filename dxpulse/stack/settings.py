"""Settings of the local development stack: where its state lives and which ports it uses."""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    """Where the local stack keeps its files and the 127.0.0.1 ports each component listens on."""

    model_config = SettingsConfigDict(env_prefix="DXPULSE_STACK_", frozen=True, extra="ignore")

    state_dir: Path = Field(
        # Relative on purpose: resolved against the directory the command runs in (the repo).
        default=Path(".dxpulse"),
        description=(
            "DXPULSE_STACK_STATE_DIR: data, configuration, pid files and logs of the running"
            " stack; `.dxpulse` in the current directory by default."
        ),
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "dxpulse",
        description=(
            "DXPULSE_STACK_CACHE_DIR: downloads shared by every checkout (the Kafka jars,"
            " resolved once per version)."
        ),
    )
    kafka_version: str = Field(
        # 3.9.x, not 4.x: 4.0 removed protocol versions aiokafka and faust-streaming still use.
        default="3.9.1",
        description="DXPULSE_STACK_KAFKA_VERSION: Apache Kafka release run in KRaft mode.",
    )
    kafka_port: int = Field(
        default=9092, ge=1, le=65535, description="DXPULSE_STACK_KAFKA_PORT: Kafka client port."
    )
    kafka_controller_port: int = Field(
        default=9095,
        ge=1,
        le=65535,
        description="DXPULSE_STACK_KAFKA_CONTROLLER_PORT: KRaft controller port of the broker.",
    )
    kafka_brokers: int = Field(
        default=1,
        ge=1,
        le=9,
        description=(
            "DXPULSE_STACK_KAFKA_BROKERS: Kafka nodes the stack runs, each a broker and a KRaft"
            " controller in a process of its own; with 3, topics get 3 replicas (2 in sync) and the"
            " cluster survives the death of any one."
        ),
    )
    kafka_port_step: int = Field(
        default=100,
        ge=1,
        le=1000,
        description=(
            "DXPULSE_STACK_KAFKA_PORT_STEP: with several brokers, broker n listens on the first"
            " broker's client, controller and SASL_SSL ports plus (n - 1) times this."
        ),
    )
    kafka_sasl_ssl_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description=(
            "DXPULSE_STACK_KAFKA_SASL_SSL_PORT: also serve clients on this port with TLS and"
            " SCRAM-SHA-512 users (the services keep the plaintext port); needs"
            " DXPULSE_STACK_KAFKA_SSL_KEYSTORE and DXPULSE_STACK_KAFKA_SCRAM_PASSWORD."
        ),
    )
    kafka_ssl_keystore: Path | None = Field(
        default=None,
        description=(
            "DXPULSE_STACK_KAFKA_SSL_KEYSTORE: PKCS12 file with the brokers' private key and"
            " certificate (for 127.0.0.1) on the SASL_SSL port."
        ),
    )
    kafka_ssl_keystore_password: SecretStr | None = Field(
        default=None,
        description="DXPULSE_STACK_KAFKA_SSL_KEYSTORE_PASSWORD: password of that PKCS12 file.",
    )
    kafka_scram_username: str = Field(
        default="dxpulse",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="DXPULSE_STACK_KAFKA_SCRAM_USERNAME: the SCRAM-SHA-512 user the SASL_SSL port accepts.",
    )
    kafka_scram_password: SecretStr | None = Field(
        default=None,
        description=(
            "DXPULSE_STACK_KAFKA_SCRAM_PASSWORD: that user's password, without commas, brackets or"
            " quotes; the user is created when Kafka's storage is formatted, so in a new state dir."
        ),
    )
    postgres_port: int = Field(
        # Not 5432, so a system PostgreSQL cluster can keep running beside the stack.
        default=5433,
        ge=1,
        le=65535,
        description="DXPULSE_STACK_POSTGRES_PORT: PostgreSQL port.",
    )
    postgres_user: str = Field(
        default="dxpulse",
        description="DXPULSE_STACK_POSTGRES_USER: PostgreSQL superuser created by initdb.",
    )
    postgres_password: str = Field(
        default="dxpulse",
        description="DXPULSE_STACK_POSTGRES_PASSWORD: password of the PostgreSQL superuser.",
    )
    postgres_db: str = Field(
        default="dxpulse", description="DXPULSE_STACK_POSTGRES_DB: database the services use."
    )
    ingest_port: int = Field(
        default=8080, ge=1, le=65535, description="DXPULSE_STACK_INGEST_PORT: ingest HTTP API."
    )
    aggregate_web_port: int = Field(
        default=6066,
        ge=1,
        le=65535,
        description="DXPULSE_STACK_AGGREGATE_WEB_PORT: web port of the faust aggregator.",
    )
    alerts_web_port: int = Field(
        default=6067,
        ge=1,
        le=65535,
        description="DXPULSE_STACK_ALERTS_WEB_PORT: web port of the alerts service.",
    )
    history_web_port: int = Field(
        default=6068,
        ge=1,
        le=65535,
        description="DXPULSE_STACK_HISTORY_WEB_PORT: web port of the history writer.",
    )
    query_port: int = Field(
        default=8081, ge=1, le=65535, description="DXPULSE_STACK_QUERY_PORT: query HTTP API (read-only)."
    )
    prometheus_port: int = Field(
        default=9090, ge=1, le=65535, description="DXPULSE_STACK_PROMETHEUS_PORT: Prometheus."
    )
    alertmanager_port: int = Field(
        default=9093,
        ge=1,
        le=65535,
        description="DXPULSE_STACK_ALERTMANAGER_PORT: Alertmanager.",
    )
    postgres_exporter_port: int = Field(
        default=9187,
        ge=1,
        le=65535,
        description="DXPULSE_STACK_POSTGRES_EXPORTER_PORT: the PostgreSQL exporter's /metrics.",
    )
    prometheus_config: Path | None = Field(
        default=None,
        description=(
            "DXPULSE_STACK_PROMETHEUS_CONFIG: prometheus.yml to run Prometheus with instead of the"
            " one `up` generates from the stack's services and ports."
        ),
    )
    prometheus: bool = Field(
        default=True,
        description=(
            "DXPULSE_STACK_PROMETHEUS: `up` starts Prometheus, scraping every service's /metrics"
            " with the alerting and recording rules of deploy/prometheus/rules."
        ),
    )
    prometheus_scrape_interval_s: float = Field(
        default=15.0,
        gt=0,
        description="DXPULSE_STACK_PROMETHEUS_SCRAPE_INTERVAL_S: scrape and rule evaluation interval.",
    )
    postgres_exporter: bool = Field(
        default=True,
        description=(
            "DXPULSE_STACK_POSTGRES_EXPORTER: with Prometheus, `up` also starts Debian's"
            " prometheus-postgres-exporter on the stack's database, scraped as the job"
            " postgres-exporter."
        ),
    )
    alertmanager_config: Path | None = Field(
        # Relative, like state_dir: the repository's file when commands run from the checkout.
        default=Path("deploy/alertmanager/alertmanager.yml"),
        description=(
            "DXPULSE_STACK_ALERTMANAGER_CONFIG: alertmanager.yml `up` runs Alertmanager with"
            " (deploy/alertmanager/alertmanager.yml by default); the alerts service pushes to it."
        ),
    )
    topic_partitions: int = Field(
        default=6,
        ge=1,
        description="DXPULSE_STACK_TOPIC_PARTITIONS: partitions of every dxpulse topic.",
    )

    @model_validator(mode="after")
    def _sasl_ssl_complete(self) -> Self:
        if self.kafka_sasl_ssl_port is None:
            return self
        if self.kafka_ssl_keystore is None or self.kafka_scram_password is None:
            raise ValueError(
                "DXPULSE_STACK_KAFKA_SASL_SSL_PORT needs DXPULSE_STACK_KAFKA_SSL_KEYSTORE and"
                " DXPULSE_STACK_KAFKA_SCRAM_PASSWORD"
            )
        # kafka-storage reads the user as SCRAM-SHA-512=[name=...,password=...].
        if any(c in self.kafka_scram_password.get_secret_value() for c in ',[]"'):
            raise ValueError("DXPULSE_STACK_KAFKA_SCRAM_PASSWORD must not hold commas, brackets or quotes")
        return self

    def kafka_ports(self, first: int) -> list[int]:
        """Port ``first`` of the first broker, as each broker has it."""
        return [first + n * self.kafka_port_step for n in range(self.kafka_brokers)]

    @property
    def kafka_bootstrap(self) -> str:
        """Bootstrap servers of the local brokers, every one of them."""
        return ",".join(f"127.0.0.1:{port}" for port in self.kafka_ports(self.kafka_port))

    @property
    def kafka_sasl_ssl_bootstrap(self) -> str | None:
        """Bootstrap servers of the SASL_SSL port, when the stack serves one."""
        if self.kafka_sasl_ssl_port is None:
            return None
        return ",".join(f"127.0.0.1:{port}" for port in self.kafka_ports(self.kafka_sasl_ssl_port))

    @property
    def replication_factor(self) -> int:
        """Replicas of the stack's topics: 3 once there are 3 brokers, as in production."""
        return min(3, self.kafka_brokers)

    @property
    def min_insync_replicas(self) -> int:
        """One less than the replicas (at least 1), so that one broker can die and writes go on."""
        return max(1, self.replication_factor - 1)

    @property
    def database_url(self) -> str:
        """DSN of the stack's database, as the services take it."""
        return (
            # Quoted so a password with '@' or '/' still makes a valid DSN.
            f"postgresql://{quote(self.postgres_user, safe='')}:{quote(self.postgres_password, safe='')}"
            f"@127.0.0.1:{self.postgres_port}/{self.postgres_db}"
        )

    @property
    def kafka_home(self) -> Path:
        """Cache folder of this Kafka version; its jars are in ``libs``."""
        return self.cache_dir.expanduser() / f"kafka-{self.kafka_version}"
