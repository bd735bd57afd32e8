"""Run an aggregator worker: ``python -m services.aggregate`` (configured by DXPULSE_* variables)."""

from __future__ import annotations

from dxpulse.business_data import business_data_or_exit
from dxpulse.faust_engine.support import run_worker
from services.aggregate.app import create_app, worker_topics
from services.aggregate.settings import AggregateSettings

if __name__ == "__main__":
    settings = AggregateSettings()
    catalog, registry = business_data_or_exit(settings, settings.aggregate_app_id)
    app = create_app(settings, catalog=catalog, registry=registry)
    run_worker(app, settings, worker_topics(settings))
