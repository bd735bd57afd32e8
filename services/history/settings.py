"""Configuration of the history writer, from DXPULSE_* environment variables."""

from __future__ import annotations

from pydantic import Field

from dxpulse.settings import WorkerSettings


class HistorySettings(WorkerSettings):
    """The history writer's identity and web port."""

    history_app_id: str = Field(
        default="dxpulse-history",
        description=(
            "DXPULSE_HISTORY_APP_ID: faust app id; also the consumer group, which reads the report"
            " and rollup topics apart from the aggregator's."
        ),
    )
    history_web_port: int = Field(
        default=6068, description="DXPULSE_HISTORY_WEB_PORT: port of /metrics and faust's web views."
    )
