"""Run the query API: ``python -m services.query`` (configured by DXPULSE_* variables)."""

from __future__ import annotations

from dxpulse.business_data import business_data_or_exit
from dxpulse.gc_tuning import tune_gc
from dxpulse.http.server import serve
from dxpulse.log_format import configure_logging, uvicorn_log_config
from services.query.app import create_app
from services.query.settings import QuerySettings


def main() -> None:
    settings = QuerySettings()
    configure_logging("dxpulse-query", settings.log_format)
    catalog, registry = business_data_or_exit(settings, "dxpulse-query")
    app = create_app(settings, catalog=catalog, registry=registry)
    tune_gc(settings.gc_thresholds)
    # uvicorn sets up its own handlers as it starts: with the throttle on them (a PostgreSQL outage).
    log_config = uvicorn_log_config("dxpulse-query", settings.log_format)
    serve(app, host=settings.query_host, port=settings.query_port, log_config=log_config)


if __name__ == "__main__":
    main()
