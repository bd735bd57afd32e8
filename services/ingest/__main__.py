"""Run the ingest API: ``python -m services.ingest`` (configured by DXPULSE_* variables)."""

from __future__ import annotations

import logging

import uvicorn

from dxpulse.gc_tuning import tune_gc
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = IngestSettings()
    app = create_app(settings)
    tune_gc(settings.gc_thresholds)
    uvicorn.run(app, host=settings.ingest_host, port=settings.ingest_port)


if __name__ == "__main__":
    main()
