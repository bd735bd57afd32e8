"""Configuration of the ingest service, from DXPULSE_* environment variables."""

from __future__ import annotations

from pydantic import Field, model_validator

from dxpulse.settings import ServiceSettings

MAX_BATCH_ITEMS = 500
"""The documented largest batch; the benchmark's batches are this size."""


class IngestSettings(ServiceSettings):
    """Where the ingest API listens, how much it accepts, and how fast."""

    ingest_host: str = Field(
        default="127.0.0.1", description="DXPULSE_INGEST_HOST: address the HTTP API binds to."
    )
    ingest_port: int = Field(default=8080, description="DXPULSE_INGEST_PORT: port of the HTTP API.")
    max_body_bytes: int = Field(
        default=4_194_304,
        gt=0,
        description="DXPULSE_MAX_BODY_BYTES: larger request bodies (single or batch) are refused with 413.",
    )
    body_read_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "DXPULSE_BODY_READ_TIMEOUT_S: a request body must arrive whole within this long of the"
            " API starting to read it, or the request is answered 408 and its connection closed."
        ),
    )
    max_batch_items: int = Field(
        default=MAX_BATCH_ITEMS,
        ge=1,
        le=MAX_BATCH_ITEMS,
        description="DXPULSE_MAX_BATCH_ITEMS: most reports in one batch; more are refused with 413.",
    )
    produce_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "DXPULSE_PRODUCE_TIMEOUT_S: how long to wait for Kafka's acks=all before answering 503."
        ),
    )
    retry_after_s: int = Field(
        default=5,
        ge=1,
        description="DXPULSE_RETRY_AFTER_S: Retry-After of a 503 (Kafka or PostgreSQL unavailable).",
    )
    kafka_retry_interval_s: float = Field(
        default=2.0,
        gt=0,
        description=(
            "DXPULSE_KAFKA_RETRY_INTERVAL_S: pause between attempts to connect to Kafka while it is"
            " unreachable (the API runs and answers 503 meanwhile)."
        ),
    )
    token_cache_ttl_s: float = Field(
        default=10.0,
        ge=0,
        description=(
            "DXPULSE_TOKEN_CACHE_TTL_S: how long a token lookup is cached; a revoked token stops"
            " working after at most this long."
        ),
    )
    rate_limit_per_s: float = Field(
        default=100.0,
        gt=0,
        description="DXPULSE_RATE_LIMIT_PER_S: reports per second each reporter may send, sustained.",
    )
    rate_limit_burst: float = Field(
        default=1000.0,
        gt=0,
        description=(
            "DXPULSE_RATE_LIMIT_BURST: reports a reporter may send at once (at least the largest"
            " batch); more within a short time are answered 429 with Retry-After."
        ),
    )
    idempotency_retention_days: float = Field(
        default=90.0,
        gt=0,
        description=(
            "DXPULSE_IDEMPOTENCY_RETENTION_DAYS: how long an accepted event id answers 'duplicate'."
            " Older ids are deleted from PostgreSQL; a resend after that is published again, which"
            " the aggregator ignores (a report is a snapshot). Matches the report topic's retention."
        ),
    )
    prune_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="DXPULSE_PRUNE_INTERVAL_S: how often accepted event ids past the retention are deleted.",
    )
    idempotency_cache_size: int = Field(
        default=200_000,
        ge=0,
        description=(
            "DXPULSE_IDEMPOTENCY_CACHE_SIZE: accepted event ids remembered in memory in front of"
            " PostgreSQL's durable record."
        ),
    )

    @model_validator(mode="after")
    def _burst_fits_a_batch(self) -> IngestSettings:
        if self.rate_limit_burst < self.max_batch_items:
            raise ValueError(
                f"DXPULSE_RATE_LIMIT_BURST ({self.rate_limit_burst:g}) must be at least"
                f" DXPULSE_MAX_BATCH_ITEMS ({self.max_batch_items}), or a full batch could never pass"
            )
        return self
