"""The benchmark suite, peers included, runs once, tiny, on a real Kafka; no timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dxpulse.stack.testing import running_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIGURES = (
    "aggregator | throughput, one worker",
    "aggregator | faust ceiling",
    "ingest | single-report requests",
    "ingest | batches of 500",
    "end-to-end | latency p50",
    "end-to-end | latency p95",
    "end-to-end | latency p99",
    "end-to-end | latency in batches of 10, p50",
    "end-to-end | latency in batches of 10, p99",
    "memory | aggregator RSS per 100,000 reporter-keys",
    "recovery | restart with",
    "history | reports written to reporter_latest",
    "replay | rebuild every rollup from 2,000 reports, new aggregator",
)
PEERS = ("Kafka Streams", "Quix Streams")
PEER_FIGURES = (
    "peers | throughput vs {peer}",
    "peers | RSS per 100,000 reporter-keys vs {peer}",
    "peers | restart → correct rollups vs {peer}",
    "replay | rebuild from 2,000 reports vs {peer}",
)
NUMBER = r"-?[0-9][0-9,.]*(e[+-]?[0-9]+)?"
"""A figure; memory deltas of a few hundred keys can be negative (a collector returned pages)."""


def test_bench_suite_runs_tiny_and_prints_every_figure(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        table = tmp_path / "figures.md"
        run = subprocess.run(
            [
                *(sys.executable, "-m", "bench", "--size", "tiny", "--kafka", stack.kafka_bootstrap),
                *("--database-url", stack.database_url),
                *("--work-dir", str(tmp_path / "bench"), "--markdown", str(table)),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=2700,  # the first run on a machine also builds the peers (Maven, pip)
            check=False,
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "dxpulse benchmarks, size tiny" in run.stdout
    rows = table.read_text().splitlines()
    assert rows[0].startswith("Machine: ")
    assert "cores" in rows[0]
    # The peers are built by the bench when their cache is absent; a build that fails says why.
    skipped = [line for line in run.stdout.splitlines() if "skipping the" in line]
    assert not skipped, "\n".join(skipped)
    peer_figures = [figure.format(peer=peer) for peer in PEERS for figure in PEER_FIGURES]
    for figure in (*FIGURES, *peer_figures):
        row = next((r for r in rows if r.startswith(f"| {figure}")), None)
        assert row is not None, f"no row for {figure!r} in\n{table.read_text()}"
        value, baseline = row.split(" | ")[2:4]
        # Every figure has a value and a same-run baseline, except batches on a checkout without them.
        if "no batch endpoint" not in row:
            assert re.match(NUMBER, value), row
        assert re.match(NUMBER, baseline), row
        if " | throughput vs " in figure or figure.startswith("replay | rebuild from"):
            # A peer's figure counts only once its final rollups match dxpulse's.
            assert re.search(r"correct: all [0-9,]+ final rollups match dxpulse's", row), row
