"""Run the alerts worker: ``python -m services.alerts`` (configured by DXPULSE_* variables)."""

from __future__ import annotations

from dxpulse.business_data import business_data_or_exit
from dxpulse.faust_engine.support import run_worker
from services.alerts.app import create_app, worker_topics
from services.alerts.settings import AlertsSettings

if __name__ == "__main__":
    settings = AlertsSettings()
    catalog, registry = business_data_or_exit(settings, settings.alerts_app_id)
    app = create_app(settings, catalog=catalog, registry=registry)
    run_worker(app, settings, worker_topics(settings))
