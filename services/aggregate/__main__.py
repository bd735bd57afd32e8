"""Run an aggregator worker: ``python -m services.aggregate`` (configured by DXPULSE_* variables)."""

from __future__ import annotations

from dxpulse.faust_engine.support import run_worker
from services.aggregate.app import create_app, worker_topics
from services.aggregate.settings import AggregateSettings

if __name__ == "__main__":
    settings = AggregateSettings()
    run_worker(create_app(settings), settings, worker_topics(settings))
