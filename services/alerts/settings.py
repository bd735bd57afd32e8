"""Configuration of the alerts worker, from DXPULSE_* environment variables."""

from __future__ import annotations

from pydantic import Field, HttpUrl, field_validator

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
    resolve_hold_down_s: float = Field(
        default=120.0,
        ge=0,
        description=(
            "DXPULSE_RESOLVE_HOLD_DOWN_S: how long a firing alert's condition must stay clear before"
            " it resolves, so a figure flapping around a threshold neither storms nor re-fires."
        ),
    )
    history_enabled: bool = Field(
        default=True, description="DXPULSE_HISTORY_ENABLED: write every alert transition to PostgreSQL."
    )
    alertmanager_url: str = Field(
        default="http://127.0.0.1:9093",
        description=(
            "DXPULSE_ALERTMANAGER_URL: Alertmanager the firing and resolved alerts are pushed to"
            " (POST /api/v2/alerts); empty to push nowhere."
        ),
    )
    alertmanager_resend_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "DXPULSE_ALERTMANAGER_RESEND_S: how often every firing alert is sent again (as Prometheus"
            " does), so an Alertmanager that restarted or missed a push gets the current set back."
        ),
    )
    alertmanager_timeout_s: float = Field(
        default=10.0, gt=0, description="DXPULSE_ALERTMANAGER_TIMEOUT_S: timeout of one push."
    )
    alertmanager_max_backoff_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "DXPULSE_ALERTMANAGER_MAX_BACKOFF_S: longest wait between retries while Alertmanager is"
            " unreachable (the wait doubles from 1 s up to this)."
        ),
    )
    docs_url: str = Field(
        default="http://127.0.0.1:8000",
        description=(
            "DXPULSE_DOCS_URL: base address of the documentation site; each alert pushed to"
            " Alertmanager links its rule's runbook page there (runbook_url). The default is"
            " `mkdocs serve` on this machine."
        ),
    )
    scoreboard_url: str = Field(
        default="http://127.0.0.1:8081",
        description=(
            "DXPULSE_SCOREBOARD_URL: base address of the web scoreboard (the query service serves"
            " it); each alert pushed to Alertmanager links its indicator's page there"
            " (dashboard_url: /indicators/{indicator}?period={period})."
        ),
    )

    @field_validator("alertmanager_url")
    @classmethod
    def _url_or_empty(cls, value: str) -> str:
        if value:
            HttpUrl(value)  # raises with a readable message when it is no http(s) URL
        return value.rstrip("/")

    @field_validator("docs_url", "scoreboard_url")
    @classmethod
    def _url(cls, value: str) -> str:
        HttpUrl(value)
        return value.rstrip("/")
