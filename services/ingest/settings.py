"""Configuration of the ingest service, from DXPULSE_* environment variables."""

from __future__ import annotations

from pydantic import Field

from dxpulse.settings import CommonSettings


class IngestSettings(CommonSettings):
    """Where the ingest API listens and how much it accepts."""

    ingest_host: str = Field(
        default="127.0.0.1", description="DXPULSE_INGEST_HOST: address the HTTP API binds to."
    )
    ingest_port: int = Field(default=8080, description="DXPULSE_INGEST_PORT: port of the HTTP API.")
    max_body_bytes: int = Field(
        default=1_048_576,
        description="DXPULSE_MAX_BODY_BYTES: larger request bodies are refused with 413.",
    )
    produce_timeout_s: float = Field(
        default=10.0,
        description=(
            "DXPULSE_PRODUCE_TIMEOUT_S: how long to wait for Kafka's acks=all before answering 503."
        ),
    )
