"""Configuration of the alerts worker, from DXPULSE_* environment variables."""

from __future__ import annotations

from pydantic import Field

from dxpulse.settings import WorkerSettings


class AlertsSettings(WorkerSettings):
    """The alerts worker's identity, web port and timing."""

    alerts_app_id: str = Field(
        default="dxpulse-alerts",
        description="DXPULSE_ALERTS_APP_ID: faust app id; also the consumer group and table prefix.",
    )
    alerts_web_port: int = Field(
        default=6067, description="DXPULSE_ALERTS_WEB_PORT: port of /metrics and faust's web views."
    )
    hold_down_s: float = Field(
        default=120.0,
        ge=0,
        description=(
            "DXPULSE_HOLD_DOWN_S: how long a condition must hold before its alert fires, so figures"
            " filling in as reports arrive, or flapping around a threshold, do not storm."
        ),
    )
    reevaluate_interval_s: float = Field(
        default=30.0,
        description=(
            "DXPULSE_REEVALUATE_INTERVAL_S: how often every known rollup is judged again, so a"
            " deadline passing fires alerts even when no report arrives."
        ),
    )
