"""Python's garbage collector set up for a long-running dxpulse process: start-up frozen, rarer passes."""

from __future__ import annotations

import gc

DEFAULT_THRESHOLDS = (50_000, 20, 100)
"""Container allocations before a young pass, then young passes per middle and middle per full pass.

CPython's (700, 10, 10) suits scripts. Here it meant a full pass over every live object every
second or so: over an aggregator's 100,000 reporter-keys of state (600,000 objects, 0.4 s a pass,
17% of the worker) and over the reports of 32 concurrent 500-report batches in ingest (a fifth
of its CPU). With these, a full pass comes after ~100 million allocations (docs/design/garbage-collection.md).
Reference counting still frees everything that is not in a cycle at once.
"""


def tune_gc(thresholds: tuple[int, int, int]) -> None:
    """Move what start-up allocated (modules, classes, the catalog) out of every later pass, then
    collect at ``thresholds``. Call once the app is built, before it serves."""
    gc.collect()  # start-up's own cycles: freed now rather than kept forever by the freeze
    gc.freeze()
    gc.set_threshold(*thresholds)
