"""Run the query API: ``python -m services.query`` (configured by DXPULSE_* variables)."""

from __future__ import annotations

import logging

import uvicorn

from dxpulse.gc_tuning import tune_gc
from services.query.app import create_app
from services.query.settings import QuerySettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = QuerySettings()
    app = create_app(settings)
    tune_gc(settings.gc_thresholds)
    uvicorn.run(app, host=settings.query_host, port=settings.query_port)


if __name__ == "__main__":
    main()
