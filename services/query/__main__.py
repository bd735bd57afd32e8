"""Run the query API: ``python -m services.query`` (configured by DXPULSE_* variables)."""

from __future__ import annotations

import logging

import uvicorn

from services.query.app import create_app
from services.query.settings import QuerySettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = QuerySettings()
    uvicorn.run(create_app(settings), host=settings.query_host, port=settings.query_port)


if __name__ == "__main__":
    main()
