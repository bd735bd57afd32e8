"""Settings shared by every dxpulse process: where Kafka and PostgreSQL are, and topic layout."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, NonNegativeInt
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


class ServiceSettings(CommonSettings):
    """Settings of every long-running service process (ingest, query, the faust workers)."""

    gc_thresholds: tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt] = Field(
        default=DEFAULT_THRESHOLDS,
        description=(
            "DXPULSE_GC_THRESHOLDS: a service's garbage-collector thresholds as a JSON list, e.g."
            " [700, 10, 10] for CPython's defaults; the first 0 turns cycle collection off. The"
            " default collects rarely: a full pass over a worker's state costs ~0.4 s."
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
