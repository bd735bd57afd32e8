"""Configuration of the aggregator worker, from DXPULSE_* environment variables."""

from __future__ import annotations

from pydantic import Field

from dxpulse.settings import WorkerSettings


class AggregateSettings(WorkerSettings):
    """The aggregator's identity, web port and tuning."""

    aggregate_app_id: str = Field(
        default="dxpulse-aggregate",
        description="DXPULSE_AGGREGATE_APP_ID: faust app id; also the consumer group and table prefix.",
    )
    aggregate_web_port: int = Field(
        default=6066, description="DXPULSE_AGGREGATE_WEB_PORT: port of /metrics and faust's web views."
    )
    rollup_gauge_periods: int = Field(
        default=4,
        ge=1,
        description=(
            "DXPULSE_ROLLUP_GAUGE_PERIODS: newest periods per indicator exported as business gauges"
            " (dxpulse_rollup_*); bounds their label cardinality."
        ),
    )
    aggregate_batch_max: int = Field(
        default=5000,
        ge=1,
        description=(
            "DXPULSE_AGGREGATE_BATCH_MAX: the most reports taken from Kafka at once; each (indicator,"
            " period) in a batch is written and published once (figures in between are skipped)."
            " A worker that is behind its input fills its batches up to this; one that keeps up"
            " takes what is there. 1 processes one report at a time and publishes every"
            " intermediate figure."
        ),
    )
    aggregate_batch_within_s: float = Field(
        default=0.0,
        ge=0,
        description=(
            "DXPULSE_AGGREGATE_BATCH_WITHIN_S: after a batch's first report arrives, how long to wait"
            " for more before processing it; adds at most this to end-to-end latency. Reports that"
            " arrive while a batch is processed form the next batch without waiting, so 0 (process"
            " at once) still batches a busy worker."
        ),
    )
