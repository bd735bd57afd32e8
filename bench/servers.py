"""Child processes of the benchmarks: the real aggregator and ingest apps over the synthetic workload.

``python -m bench.servers aggregate SIZE`` / ``ingest SIZE``, configured by DXPULSE_* variables like
the services themselves; only the catalog and registry differ (synthetic, sized by SIZE).
"""

from __future__ import annotations

import sys

import uvicorn

from bench.synthetic import SIZES, Workload
from dxpulse.faust_support import run_worker
from services.aggregate.app import create_app as create_aggregate
from services.aggregate.app import worker_topics
from services.aggregate.settings import AggregateSettings
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings

USAGE = "usage: python -m bench.servers aggregate|ingest tiny|small|full"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("aggregate", "ingest") or argv[1] not in SIZES:
        print(USAGE, file=sys.stderr)
        return 2
    workload = Workload(SIZES[argv[1]])
    if argv[0] == "aggregate":
        settings = AggregateSettings()
        app = create_aggregate(settings, catalog=workload.catalog, registry=workload.registry)
        run_worker(app, settings, worker_topics(settings), loglevel="warn")
    else:
        ingest = IngestSettings()
        api = create_ingest(ingest, catalog=workload.catalog, registry=workload.registry)
        uvicorn.run(
            api, host=ingest.ingest_host, port=ingest.ingest_port, log_level="warning", access_log=False
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
