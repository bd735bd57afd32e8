"""Run the alerts worker: ``python -m services.alerts`` (configured by DXPULSE_* variables)."""

from __future__ import annotations

from dxpulse.faust_engine.support import run_worker
from services.alerts.app import create_app, worker_topics
from services.alerts.settings import AlertsSettings

if __name__ == "__main__":
    settings = AlertsSettings()
    run_worker(create_app(settings), settings, worker_topics(settings))
