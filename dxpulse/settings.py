"""Settings shared by every dxpulse process: where Kafka and PostgreSQL are, and topic layout."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, NonNegativeInt, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dxpulse.gc_tuning import DEFAULT_THRESHOLDS


class CommonSettings(BaseSettings):
    """Connection settings every service and CLI command reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="DXPULSE_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        description="DXPULSE_KAFKA_BOOTSTRAP: Kafka bootstrap servers, comma separated host:port.",
    )
    database_url: str = Field(
        default="postgresql://dxpulse:dxpulse@127.0.0.1:5433/dxpulse",
        description="DXPULSE_DATABASE_URL: PostgreSQL DSN used for history, tokens and alerts.",
    )
    worker_web_host: str = Field(
        default="127.0.0.1",
        description=(
            "DXPULSE_WORKER_WEB_HOST: the only address the faust workers' web server (/metrics)"
            " listens on; 0.0.0.0 in containers."
        ),
    )
    topic_partitions: int = Field(
        default=6,
        ge=1,
        description=(
            "DXPULSE_TOPIC_PARTITIONS: partitions of every dxpulse topic; the upper bound on"
            " aggregator workers sharing the work."
        ),
    )
    replication_factor: int = Field(
        default=1,
        ge=1,
        description=(
            "DXPULSE_REPLICATION_FACTOR: copies Kafka keeps of every partition of the topics dxpulse"
            " creates, faust's own included; at most the number of brokers. A process refuses to start"
            " when an existing topic has fewer."
        ),
    )
    min_insync_replicas: int = Field(
        default=1,
        ge=1,
        description=(
            "DXPULSE_MIN_INSYNC_REPLICAS: min.insync.replicas of every topic dxpulse creates: the"
            " copies a write must reach before Kafka acknowledges it to dxpulse's producers (acks=all);"
            " at most DXPULSE_REPLICATION_FACTOR, and below it so that a broker can die."
        ),
    )

    @model_validator(mode="after")
    def _writable(self) -> Self:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"DXPULSE_MIN_INSYNC_REPLICAS ({self.min_insync_replicas}) is above"
                f" DXPULSE_REPLICATION_FACTOR ({self.replication_factor}): Kafka would refuse every write"
            )
        return self


class SecurityProtocol(StrEnum):
    """How a Kafka connection is carried: Kafka's ``security.protocol``."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    """How a client proves its SASL identity: Kafka's ``sasl.mechanism``."""

    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


SASL_PROTOCOLS = frozenset({SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL})
TLS_PROTOCOLS = frozenset({SecurityProtocol.SSL, SecurityProtocol.SASL_SSL})


class KafkaSecuritySettings(BaseSettings):
    """How a dxpulse process authenticates to Kafka and encrypts its connections
    (``dxpulse.kafka.security`` turns them into client arguments)."""

    model_config = SettingsConfigDict(env_prefix="DXPULSE_", frozen=True, extra="ignore")

    kafka_security_protocol: SecurityProtocol = Field(
        default=SecurityProtocol.PLAINTEXT,
        description=(
            "DXPULSE_KAFKA_SECURITY_PROTOCOL: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT (a user and"
            " password, unencrypted) or SASL_SSL (both)."
        ),
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default=SaslMechanism.SCRAM_SHA_512,
        description=(
            "DXPULSE_KAFKA_SASL_MECHANISM: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with a SASL protocol."
            " PLAIN sends the password itself, so only over SASL_SSL."
        ),
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="DXPULSE_KAFKA_SASL_USERNAME: the SASL user, with a SASL protocol."
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None,
        description=(
            "DXPULSE_KAFKA_SASL_PASSWORD: the SASL user's password; never logged. Give it or"
            " DXPULSE_KAFKA_SASL_PASSWORD_FILE, not both."
        ),
    )
    kafka_sasl_password_file: Path | None = Field(
        default=None,
        description=(
            "DXPULSE_KAFKA_SASL_PASSWORD_FILE: a file holding the SASL password (a mounted secret),"
            " read at start; a trailing newline is ignored."
        ),
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description=(
            "DXPULSE_KAFKA_SSL_CAFILE: PEM certificates of the authorities that signed the brokers'"
            " certificates, with SSL or SASL_SSL; the system's authorities when unset."
        ),
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None,
        description=(
            "DXPULSE_KAFKA_SSL_CERTFILE: PEM client certificate, for brokers that authenticate clients"
            " by certificate (ssl.client.auth); may hold the key too."
        ),
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None,
        description="DXPULSE_KAFKA_SSL_KEYFILE: PEM private key of the client certificate, if not in it.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        protocol = self.kafka_security_protocol
        sasl = protocol in SASL_PROTOCOLS
        passwords = (self.kafka_sasl_password is not None) + (self.kafka_sasl_password_file is not None)
        if sasl and not self.kafka_sasl_username:
            raise ValueError(f"DXPULSE_KAFKA_SECURITY_PROTOCOL={protocol} needs DXPULSE_KAFKA_SASL_USERNAME")
        if sasl and passwords != 1:
            raise ValueError(
                f"DXPULSE_KAFKA_SECURITY_PROTOCOL={protocol} needs one of DXPULSE_KAFKA_SASL_PASSWORD"
                " and DXPULSE_KAFKA_SASL_PASSWORD_FILE"
            )
        # Credentials that would be ignored mean a protocol set wrong: say so, not connect without.
        if not sasl and (self.kafka_sasl_username or passwords):
            raise ValueError(
                f"a SASL user or password is set but DXPULSE_KAFKA_SECURITY_PROTOCOL is {protocol}:"
                " set it to SASL_SSL or SASL_PLAINTEXT"
            )
        tls_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if protocol not in TLS_PROTOCOLS and any(tls_files):
            raise ValueError(
                f"TLS files are set but DXPULSE_KAFKA_SECURITY_PROTOCOL is {protocol}:"
                " set it to SSL or SASL_SSL"
            )
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ValueError("DXPULSE_KAFKA_SSL_KEYFILE needs DXPULSE_KAFKA_SSL_CERTFILE")
        return self


class BusinessDataSettings(BaseSettings):
    """Where a service reads the indicator catalog and the reporter registry (``dxpulse.business_data``)."""

    model_config = SettingsConfigDict(env_prefix="DXPULSE_", frozen=True, extra="ignore")

    catalog_path: Path | None = Field(
        default=None,
        description=(
            "DXPULSE_CATALOG_PATH: the indicator catalog, a YAML file; the one packaged with dxpulse"
            " when unset. Read and validated at start: a wrong file stops the process with one line per"
            " problem."
        ),
    )
    registry_path: Path | None = Field(
        default=None,
        description=(
            "DXPULSE_REGISTRY_PATH: the reporter registry, a folder holding groups.yaml, versions.yaml,"
            " national.csv and the lists versions.yaml names; the one packaged with dxpulse when unset."
            " Read and validated at start, with the catalog."
        ),
    )

    @field_validator("catalog_path", "registry_path", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # A manifest that sets the variable to "" means the packaged file, not the current folder.
        return None if value == "" else value


class ServiceSettings(CommonSettings, KafkaSecuritySettings, BusinessDataSettings):
    """Settings of every long-running service process (ingest, query, the faust workers)."""

    gc_thresholds: tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt] = Field(
        default=DEFAULT_THRESHOLDS,
        description=(
            "DXPULSE_GC_THRESHOLDS: a service's garbage-collector thresholds as a JSON list, e.g."
            " [700, 10, 10] for CPython's defaults; the first 0 turns cycle collection off. The"
            " default collects rarely: a full pass over a worker's state costs ~0.4 s."
        ),
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description=(
            "DXPULSE_LOG_FORMAT: the services' log lines: text, as people read them, or json, one JSON"
            " object per line (time, service, level, logger, message, the event id or key where the"
            " line has one, any exception) for a log collector."
        ),
    )
    migrate_at_start: bool = Field(
        default=False,
        description=(
            "DXPULSE_MIGRATE_AT_START: true to have the ingest, the history writer and the alerts"
            " worker apply the database migrations they find missing when they first connect; false"
            " and they wait (the ingest answering 503) until `dxpulse db migrate` has applied them."
        ),
    )


class WorkerSettings(ServiceSettings):
    """Settings every faust worker (aggregate, alerts, history) shares."""

    state_dir: Path = Field(
        default=Path(".dxpulse"), description="DXPULSE_STATE_DIR: where workers keep local files."
    )
    session_timeout_s: float = Field(
        default=10.0,
        description=(
            "DXPULSE_SESSION_TIMEOUT_S: Kafka consumer session timeout; a crashed worker's partitions"
            " move to the others after this long."
        ),
    )
    worker_debug_pages: bool = Field(
        default=False,
        description=(
            "DXPULSE_WORKER_DEBUG_PAGES: true to serve faust's own pages on the worker's web server"
            " (/table with the tables' keys and values, /router, /graph, /performance, statistics at /);"
            " unauthenticated, so for debugging only."
        ),
    )
