"""The peer scenarios (the rollup job in Kafka Streams and Quix Streams) and the replay scenario."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.children import Child
from bench.kafka import (
    Advance,
    RollupWatcher,
    commit_offsets,
    consume_and_decode,
    end_offsets,
    produce,
    read_batches,
    security,
)
from bench.peers import PEERS, Peer, PeerUnavailable, cache_dir, start_peer, write_spec
from bench.results import Figure
from bench.scenarios import Bench, _watch
from bench.synthetic import Workload
from dxpulse.domain.periods import parse_period
from dxpulse.domain.rollup import Snapshot, compute_rollups
from dxpulse.kafka.topics import REPORTS, ROLLUPS
from schemas import Report, Rollup

PROBE_OFFSET = 50_000_000
"""Sequence numbers of the peers' restart probes: their own, newer than the aggregator scenario's."""
REPLAY_OFFSET = 60_000_000
"""Sequence numbers of the replay scenario's reports."""
QUIET_S = 120.0
"""A peer that has published rollups and then nothing for this long, with some still not matching
dxpulse's, is done and wrong."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Figures:
    """What a peer's rollup is checked on: every number of dxpulse's rollup (not its name lists,
    target or revision hash, which the peers do not compute)."""

    value: float | None
    numerator: float
    denominator: float | None
    reporters_reported: int
    reporters_expected: int
    latest_observed_us: int | None
    lagging_count: int
    not_reported_count: int

    @classmethod
    def of_rollup(cls, rollup: Rollup) -> Figures:
        newest = rollup.latest_observed_at
        return cls(
            None if rollup.value is None else float(rollup.value),
            float(rollup.numerator),
            None if rollup.denominator is None else float(rollup.denominator),
            rollup.reporters_reported,
            rollup.reporters_expected,
            None if newest is None else (newest - EPOCH) // timedelta(microseconds=1),
            rollup.lagging_count,
            rollup.not_reported_count,
        )

    @classmethod
    def of_peer(cls, body: dict[str, Any]) -> Figures:
        return cls(
            None if body["value"] is None else float(body["value"]),
            float(body["numerator"]),
            None if body["denominator"] is None else float(body["denominator"]),
            int(body["reporters_reported"]),
            int(body["reporters_expected"]),
            body["latest_observed_us"],
            int(body["lagging_count"]),
            int(body["not_reported_count"]),
        )


def final_rollups(workload: Workload, reports: Iterable[Report]) -> dict[str, Rollup]:
    """Rollup key → the rollup dxpulse's domain computes from the latest report of each reporter
    (newest observation wins, whatever the order of ``reports``)."""
    latest: dict[tuple[str, str], dict[str, Snapshot]] = {}
    for report in reports:
        snaps = latest.setdefault((report.indicator, report.period), {})
        snap, current = Snapshot.of(report), snaps.get(report.reporter)
        if current is None or current.order < snap.order:
            snaps[report.reporter] = snap
    computed_at = datetime.now(UTC)
    rollups = {}
    for (indicator_id, label), snaps in latest.items():
        indicator = workload.catalog[indicator_id]
        period = parse_period(label, indicator.period_type)
        for rollup in compute_rollups(indicator, period, snaps, workload.registry, computed_at):
            rollups[rollup.key] = rollup
    return rollups


def figures_of(rollups: dict[str, Rollup]) -> dict[str, Figures]:
    return {key: Figures.of_rollup(rollup) for key, rollup in rollups.items()}


class PeerWrong(Exception):
    """A peer's final rollups differ from dxpulse's."""


@dataclass
class PeerWatcher:
    """Follows a peer's rollup topic from its start, keeping the latest figures per key."""

    bootstrap: str
    topic: str
    partitions: int
    latest: dict[str, Figures] = field(default_factory=dict)
    first_received: float | None = None
    last_received: float = 0.0
    _consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> PeerWatcher:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20, **security()
        )
        await self._consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
        for records in batches.values():
            for record in records:
                self.last_received = time.perf_counter()
                if self.first_received is None:
                    self.first_received = self.last_received
                self.latest[record.key.decode()] = Figures.of_peer(json.loads(record.value))

    def differing(self, expected: dict[str, Figures]) -> list[str]:
        return [key for key, figures in expected.items() if self.latest.get(key) != figures]

    async def first(self, peer: Child, deadline_s: float) -> float:
        """Wait for the peer's first rollup; perf_counter() when it was read."""
        give_up = time.perf_counter() + deadline_s
        while self.first_received is None:
            peer.check_alive()
            if time.perf_counter() > give_up:
                raise TimeoutError(f"{peer.name} published nothing within {deadline_s:.0f} s; see {peer.log}")
            await self.poll()
        return self.first_received

    async def until(
        self, peer: Child, expected: dict[str, Figures], deadline_s: float, advance: Advance
    ) -> float:
        """Poll until every key shows its expected figures; perf_counter() then. Raises PeerWrong
        when the peer, having published since this call, has gone quiet (or the deadline passed)
        with keys still differing."""
        began = time.perf_counter()
        give_up = began + deadline_s
        left = len(self.differing(expected))
        while left:
            peer.check_alive()
            now = time.perf_counter()
            quiet = self.last_received > began and now - self.last_received > QUIET_S
            if quiet or now > give_up:
                wrong = self.differing(expected)
                key = wrong[0]
                raise PeerWrong(
                    f"{len(wrong):,} of {len(expected):,} final rollups differ from dxpulse's,"
                    f" e.g. {key}: {self.latest.get(key)} instead of {expected[key]}"
                )
            await self.poll()
            now_left = len(self.differing(expected))
            advance(left - now_left)
            left = now_left
        return time.perf_counter()


_BUILT: dict[str, list[str] | None] = {}


def built(bench: Bench, peer: Peer) -> list[str] | None:
    """The command that runs ``peer``, built once per run (None, with the reason printed, when it
    cannot be built here)."""
    if peer.slug not in _BUILT:
        say = bench.progress.console.print
        try:
            _BUILT[peer.slug] = peer.build(cache_dir(), lambda line: say(f"[dim]{line}[/]"))
        except PeerUnavailable as unavailable:
            say(f"[yellow]skipping the {peer.name} peer: {unavailable}[/]")
            _BUILT[peer.slug] = None
    return _BUILT[peer.slug]


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def read_reports(bootstrap: str, start: dict[int, int], end: dict[int, int]) -> list[Report]:
    """The reports in the log from ``start`` to ``end`` (partition → offset), decoded."""
    count = sum(end[p] - start[p] for p in start)
    reports: list[Report] = []
    async for records in read_batches(bootstrap, REPORTS, start, count, 10_000):
        reports.extend(Report.model_validate_json(record.value) for record in records)
    return reports[:count]


@dataclass
class PeerRun:
    """One peer instance over reports already in the log: its rollup topic, watcher and process."""

    bench: Bench
    peer: Peer
    command: list[str]
    spec: Path
    label: str
    start: dict[int, int]
    app_id: str = ""
    topic: str = ""

    def __post_init__(self) -> None:
        self.app_id = f"bench-{self.peer.slug}-{self.label}-{self.bench.run_id}"
        self.topic = f"bench.{self.peer.slug}.{self.label}.{self.bench.run_id}"

    async def prepare(self) -> None:
        """Its own output topic, and its group starting at ``start`` of the reports topic."""
        await create_topic(self.bench.bootstrap, self.topic, len(self.start))
        await commit_offsets(self.bench.bootstrap, self.app_id, REPORTS, self.start)

    def launch(self, name: str) -> Child:
        """A process of the peer (same app id and state folder each time: a restart)."""
        bench = self.bench
        return start_peer(
            self.command, name, bench.bootstrap, self.app_id, (REPORTS, self.topic), self.spec, bench.work_dir
        )

    def watcher(self) -> PeerWatcher:
        return PeerWatcher(self.bench.bootstrap, self.topic, len(self.start))


def _kib_mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


async def peers(bench: Bench) -> None:
    """Each peer over the reports the aggregator scenario rolled up (from its start to the end of the
    log now): reports/s, memory per 100,000 reporter-keys and restart → correct rollups, each beside
    dxpulse's figure of that scenario once the peer's final rollups match dxpulse's."""
    if bench.throughput_start is None:
        raise RuntimeError("the peers scenario runs after the aggregator scenario, over its reports")
    start = bench.throughput_start
    base = await read_reports(bench.bootstrap, start, await end_offsets(bench.bootstrap, REPORTS))
    keys = len({(r.indicator, r.period, r.reporter) for r in base})
    spec = bench.work_dir / "peer-spec.json"
    write_spec(bench.workload, spec)
    probes: list[Report] = []
    for peer in PEERS:
        command = built(bench, peer)
        if command is not None:
            run = PeerRun(bench, peer, command, spec, "peer", start)
            try:
                await _peer(bench, run, base, keys, probes)
            except (RuntimeError, TimeoutError) as error:
                _failed(bench, "peers", f"throughput vs {peer.name}", error)


def _failed(bench: Bench, scenario: str, metric: str, error: Exception) -> None:
    bench.progress.console.print(f"[red]{metric}: {error}[/]")
    bench.add(Figure(scenario, metric, 0.0, "", None, "", "", False, f"failed: {str(error)[:300]}"))


async def _peer(bench: Bench, run: PeerRun, base: list[Report], keys: int, probes: list[Report]) -> None:
    """One peer over ``base`` and the probes earlier peers' restarts added to the log."""
    name, dxpulse = run.peer.name, bench.measured
    consumed = [*base, *probes]
    expected = figures_of(final_rollups(bench.workload, consumed))
    await run.prepare()
    async with run.watcher() as watcher:
        child = run.launch(run.peer.slug)
        try:
            first = await watcher.first(child, 600)
            empty_kib = child.rss_kib()
            done = await watcher.until(
                child, expected, 3600, bench.task(f"{name}: rollups correct", len(expected))
            )
            full_kib = child.rss_kib()
        except PeerWrong as wrong:
            _wrong(bench, "peers", f"throughput vs {name}", dxpulse["throughput"], "reports/s", wrong)
            return
        finally:
            child.stop()
        rate = (len(consumed) - 1) / (done - first)
        correct = f"correct: all {len(expected):,} final rollups match dxpulse's"
        bench.add(
            Figure(
                "peers",
                f"throughput vs {name}",
                dxpulse["throughput"],
                "reports/s",
                rate,
                f"{name}, same reports",
                ">= 1.00: at least the peer" if run.peer.pace_setter else "(reported)",
                dxpulse["throughput"] >= rate if run.peer.pace_setter else None,
                f"{correct}; {len(consumed):,} reports over {keys:,} reporter-keys, one instance,"
                " timed from its first rollup",
            )
        )
        bench.add(
            Figure(
                "peers",
                f"RSS per 100,000 reporter-keys vs {name}",
                dxpulse["memory"],
                "MiB",
                (full_kib - empty_kib) * 1024 * 100_000 / keys / 2**20,
                name,
                "(reported)",
                None,
                f"{name} VmRSS {_kib_mib(empty_kib)} at its first rollup → {_kib_mib(full_kib)}",
            )
        )
        count = min(12, bench.size.reporter_keys)
        new = [bench.workload.report(PROBE_OFFSET + len(probes) + i) for i in range(count)]
        after = figures_of(final_rollups(bench.workload, [*consumed, *new]))
        changed = {key: figures for key, figures in after.items() if expected.get(key) != figures}
        second = run.launch(f"{run.peer.slug}-restarted")
        try:
            messages = bench.workload.messages(PROBE_OFFSET + len(probes), count)
            probes.extend(new)
            await produce(bench.bootstrap, REPORTS, messages)
            done = await watcher.until(second, changed, 900, bench.task(f"{name} restarted", len(changed)))
            recovered_kib = second.rss_kib()
        except PeerWrong as wrong:
            _wrong(bench, "peers", f"restart → correct rollups vs {name}", dxpulse["recovery"], "s", wrong)
            return
        finally:
            second.stop()
    bench.add(
        Figure(
            "peers",
            f"restart → correct rollups vs {name}",
            dxpulse["recovery"],
            "s",
            done - second.started,
            name,
            "(reported)",
            None,
            f"SIGTERM, then a new process on the same state folder; {count} probe reports;"
            f" {name} RSS after recovery {_kib_mib(recovered_kib)}",
        )
    )


def _wrong(bench: Bench, scenario: str, metric: str, value: float, unit: str, wrong: PeerWrong) -> None:
    bench.add(
        Figure(scenario, metric, value, unit, None, "", "(reported)", None, f"wrong: {wrong}; no ratio")
    )


async def replay(bench: Bench) -> None:
    """A new aggregator (new app id: no state, no changelog) rebuilds every rollup from N reports
    already in the log: what a catalog correction costs. Then each peer, fresh, over the same N."""
    n = bench.size.replay_reports
    start = await end_offsets(bench.bootstrap, REPORTS)
    await produce(
        bench.bootstrap, REPORTS, bench.workload.messages(REPLAY_OFFSET, n), bench.task(f"producing {n:,}", n)
    )
    rollups = final_rollups(bench.workload, (bench.workload.report(REPLAY_OFFSET + i) for i in range(n)))
    app_id = f"bench-replay-{bench.run_id}"
    await commit_offsets(bench.bootstrap, app_id, REPORTS, start)
    async with RollupWatcher(bench.bootstrap, await end_offsets(bench.bootstrap, ROLLUPS)) as watcher:
        worker = bench.aggregator(app_id, "replay")
        try:
            revisions = {key: rollup.revision for key, rollup in rollups.items()}
            done = await _watch(bench, watcher, worker, revisions, "replay: every rollup rebuilt", 3600)
        finally:
            worker.stop()
    seconds = done - worker.started
    raw_s = await consume_and_decode(bench.bootstrap, REPORTS, start, n, bench.task("raw consume+decode", n))
    bench.add(
        Figure(
            "replay",
            f"rebuild every rollup from {n:,} reports, new aggregator",
            seconds,
            "s",
            raw_s,
            "raw consume+decode",
            "(reported)",
            None,
            f"process start → all {len(rollups):,} rollups correct ({n / seconds:,.0f} reports/s)",
        )
    )
    spec = bench.work_dir / "peer-spec.json"
    write_spec(bench.workload, spec)
    expected = figures_of(rollups)
    for peer in PEERS:
        command = built(bench, peer)
        if command is None:
            continue
        run = PeerRun(bench, peer, command, spec, "replay", start)
        metric = f"rebuild from {n:,} reports vs {peer.name}"
        try:
            await run.prepare()
            async with run.watcher() as peer_watcher:
                child = run.launch(f"{peer.slug}-replay")
                try:
                    advance = bench.task(f"{peer.name} replay", len(expected))
                    done = await peer_watcher.until(child, expected, 3600, advance)
                finally:
                    child.stop()
        except PeerWrong as wrong:
            _wrong(bench, "replay", metric, seconds, "s", wrong)
            continue
        except (RuntimeError, TimeoutError) as error:
            _failed(bench, "replay", metric, error)
            continue
        bench.add(
            Figure(
                "replay",
                metric,
                seconds,
                "s",
                done - child.started,
                f"{peer.name}, same reports",
                "(reported)",
                None,
                f"correct: all {len(expected):,} final rollups match dxpulse's; process start → correct",
            )
        )
