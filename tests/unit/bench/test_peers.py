"""The Quix Streams peer's job and the bench's expected rollups agree with dxpulse's domain."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.peer_scenarios import Figures, figures_of, final_rollups
from bench.peers import spec_of
from bench.peers.quix.app import Job
from bench.synthetic import SIZES, Workload
from schemas import Report

WORKLOAD = Workload(SIZES["tiny"])
REPORTS = [WORKLOAD.report(seq) for seq in range(300)]
"""Every reporter-key of the tiny size at least twice: later reports replace earlier ones."""


class MemoryState:
    """Quix Streams' state of one message key: get and set, values kept as JSON as its store does."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)


def run_job(reports: list[Report]) -> dict[str, Figures]:
    """The last rollup per key the Quix Streams job publishes for ``reports`` in this order."""
    job = Job(json.loads(json.dumps(spec_of(WORKLOAD))))
    states: dict[str, MemoryState] = {}
    published: dict[str, Figures] = {}
    for report in reports:
        state = states.setdefault(f"{report.indicator}|{report.period}", MemoryState())
        for rollup in job.step(json.loads(report.model_dump_json()), state):
            published[rollup["key"]] = Figures.of_peer(rollup)
    return published


def test_expected_rollups_are_the_aggregators_revisions() -> None:
    revisions = {key: rollup.revision for key, rollup in final_rollups(WORKLOAD, REPORTS).items()}
    assert revisions == WORKLOAD.expected_revisions(0, len(REPORTS))


def test_quix_job_publishes_the_domains_figures() -> None:
    assert run_job(REPORTS) == figures_of(final_rollups(WORKLOAD, REPORTS))


@settings(max_examples=25, deadline=None)
@given(
    order=st.permutations(range(len(REPORTS))),
    again=st.lists(st.integers(0, len(REPORTS) - 1), max_size=30),
)
def test_late_and_duplicate_reports_change_no_final_figure(order: list[int], again: list[int]) -> None:
    """Any order, with redeliveries: the newest observation of each reporter wins, in the job and in
    the bench's expected rollups alike."""
    shuffled = [REPORTS[i] for i in [*order, *again]]
    expected = figures_of(final_rollups(WORKLOAD, REPORTS))
    assert figures_of(final_rollups(WORKLOAD, shuffled)) == expected
    published = run_job(shuffled)
    assert {key: published[key] for key in expected} == expected
