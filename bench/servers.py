"""Child processes of the benchmarks: the real services' apps over the synthetic workload.

``python -m bench.servers aggregate SIZE`` / ``ingest SIZE`` / ``history SIZE``, configured by
DXPULSE_* variables like the services themselves; only the catalog and registry differ (synthetic,
sized by SIZE).
``ceiling SIZE`` is a faust worker that only takes and decodes reports (``bench.ceiling``).
"""

from __future__ import annotations

import sys

from bench.synthetic import SIZES, Workload

KINDS = ("aggregate", "ingest", "history", "ceiling")
USAGE = "usage: python -m bench.servers aggregate|ingest|history|ceiling tiny|small|full"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in KINDS or argv[1] not in SIZES:
        print(USAGE, file=sys.stderr)
        return 2
    workload = Workload(SIZES[argv[1]])
    # Each imports only what its service imports, so start-up (part of recovery) is the service's own.
    if argv[0] == "ceiling":
        from bench.ceiling import create_ceiling_app
        from dxpulse.faust_engine.support import run_worker
        from services.aggregate.settings import AggregateSettings

        settings = AggregateSettings()
        run_worker(create_ceiling_app(settings), settings, (), loglevel="info")
    elif argv[0] == "aggregate":
        from dxpulse.faust_engine.support import run_worker
        from services.aggregate.app import create_app, worker_topics
        from services.aggregate.settings import AggregateSettings

        settings = AggregateSettings()
        app = create_app(settings, catalog=workload.catalog, registry=workload.registry)
        # "info", as the service runs: at "warn" or above faust's worker keeps its terminal spinner,
        # which sets the root logger to DEBUG, and every debug line of faust and aiokafka is then
        # formatted (~6% of the aggregator and ~10% of a recovery, measured with --profile).
        run_worker(app, settings, worker_topics(settings), loglevel="info")
    elif argv[0] == "history":
        from dxpulse.faust_engine.support import run_worker
        from services.history.app import create_app as create_history
        from services.history.settings import HistorySettings

        history = HistorySettings()
        run_worker(
            create_history(history, catalog=workload.catalog, registry=workload.registry),
            history,
            (),
            loglevel="info",
        )
    else:
        from dxpulse.gc_tuning import tune_gc
        from dxpulse.http.server import serve
        from services.ingest.app import create_app as create_ingest
        from services.ingest.settings import IngestSettings

        ingest = IngestSettings()
        api = create_ingest(ingest, catalog=workload.catalog, registry=workload.registry)
        tune_gc(ingest.gc_thresholds)
        serve(api, host=ingest.ingest_host, port=ingest.ingest_port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
