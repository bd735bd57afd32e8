"""Run the ingest API: ``python -m services.ingest`` (configured by DXPULSE_* variables)."""

from __future__ import annotations

from dxpulse.business_data import business_data_or_exit
from dxpulse.gc_tuning import tune_gc
from dxpulse.http.server import serve
from dxpulse.log_format import configure_logging, uvicorn_log_config
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings


def main() -> None:
    settings = IngestSettings()
    configure_logging("dxpulse-ingest", settings.log_format)
    catalog, registry = business_data_or_exit(settings, "dxpulse-ingest")
    app = create_app(settings, catalog=catalog, registry=registry)
    tune_gc(settings.gc_thresholds)
    # uvicorn sets up its own handlers (its access log's too) as it starts: with the throttle on them.
    log_config = uvicorn_log_config("dxpulse-ingest", settings.log_format)
    serve(app, host=settings.ingest_host, port=settings.ingest_port, log_config=log_config)


if __name__ == "__main__":
    main()
