"""An aggregator worker for the drop reproduction, optionally ending recovery in faust's own order."""

from __future__ import annotations

import os

from faust.tables.recovery import Recovery

from dxpulse.faust_engine import support as faust_support
from services.aggregate.app import create_app, worker_topics
from services.aggregate.settings import AggregateSettings

FAUST_RECOVERY_ORDER = "DXPULSE_TEST_FAUST_RECOVERY_ORDER"
"""Set to 1: stream partitions resume before the seek that ends recovery, as faust-streaming 0.15.3 does."""


def main() -> None:
    """Run the worker as ``python -m services.aggregate`` does, with faust's order if asked for."""
    if os.environ.get(FAUST_RECOVERY_ORDER) == "1":
        recovery: type[Recovery] = faust_support.SeekThenResumeRecovery
        recovery.on_recovery_completed = Recovery.on_recovery_completed  # type: ignore[method-assign]
    settings = AggregateSettings()
    faust_support.run_worker(create_app(settings), settings, worker_topics(settings))


if __name__ == "__main__":
    main()
