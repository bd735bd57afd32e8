"""Run the history writer: ``python -m services.history`` (configured by DXPULSE_* variables)."""

from __future__ import annotations

from dxpulse.business_data import business_data_or_exit
from dxpulse.faust_engine.support import run_worker
from services.history.app import create_app
from services.history.settings import HistorySettings

if __name__ == "__main__":
    settings = HistorySettings()
    catalog, registry = business_data_or_exit(settings, settings.history_app_id)
    run_worker(create_app(settings, catalog=catalog, registry=registry), settings, ())
