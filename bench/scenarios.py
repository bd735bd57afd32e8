"""The benchmark scenarios: each measures dxpulse and a raw-client baseline on the same topics."""

from __future__ import annotations

import asyncio
import bisect
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.progress import Progress

from bench.ceiling import DECODED, FIRST_AT, FIRST_BATCH, LAST_AT
from bench.children import Child, start_child, wait_http
from bench.kafka import (
    RollupWatcher,
    commit_offsets,
    consume_and_decode,
    end_offsets,
    new_producer,
    produce,
    read_batches,
    security,
)
from bench.results import Figure
from bench.synthetic import OBSERVED_BASE, Size, Workload
from dxpulse.kafka.topics import REPORTS, ROLLUPS
from dxpulse.postgres.migrations import apply_migrations
from dxpulse.postgres.token_store import create_tokens
from schemas import Report
from schemas.events import report_key
from services.aggregate.settings import AggregateSettings
from services.history.core import BATCH as HISTORY_BATCH
from services.history.core import latest_row
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings

BATCH = 500
"""Reports per HTTP batch: the batch size local systems are advised to send."""
HTTP_CONCURRENCY = 32


@dataclass
class Bench:
    """What every scenario shares: the Kafka it runs on, the workload, a work folder and the figures."""

    bootstrap: str
    database_url: str
    """PostgreSQL of the ingest app (tokens, accepted event ids)."""
    size: Size
    work_dir: Path
    progress: Progress
    workload: Workload = field(init=False)
    figures: list[Figure] = field(default_factory=list)
    profile: bool = False
    """Sample the services' processes with py-spy (see children.start_child)."""
    ingest_rate: float | None = None
    """Single-report requests/s the ingest scenario measured; caps the latency scenario's rate."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    tokens: dict[str, str] = field(default_factory=dict)
    """Reporter → bearer token, minted once per run for every reporter of the workload."""
    throughput_start: dict[int, int] | None = None
    """Where the aggregator scenario's reports start in the log (the peers read the same ones)."""
    measured: dict[str, float] = field(default_factory=dict)
    """dxpulse's figures the peer rows stand beside: throughput, memory and recovery."""

    def __post_init__(self) -> None:
        self.workload = Workload(self.size)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        self.progress.console.print(
            f"[bold]{figure.scenario}[/] {figure.metric}: " + " · ".join(c for c in figure.cells()[2:] if c)
        )

    def task(self, description: str, total: float | None) -> Callable[[int], None]:
        task = self.progress.add_task(description, total=total)
        return lambda n: self.progress.advance(task, n)

    async def fresh_worker(self, label: str) -> tuple[str, Child]:
        """Start an aggregator with a new app id whose group starts at the current end of reports."""
        app_id = f"bench-{label}-{self.run_id}"
        await commit_offsets(self.bootstrap, app_id, REPORTS, await end_offsets(self.bootstrap, REPORTS))
        return app_id, self.aggregator(app_id, label)

    async def ingest(self, name: str) -> Child:
        """An ingest app over the workload, with a token per reporter and no practical rate limit."""
        if not self.tokens:
            await apply_migrations(self.database_url)
            connection = await asyncpg.connect(self.database_url)
            try:
                minted = await create_tokens(connection, self.workload.reporters, f"bench-{self.run_id}")
            finally:
                await connection.close()
            self.tokens = {reporter: token.secret for reporter, token in minted.items()}
        child = start_child(
            "ingest",
            self.size.name,
            self.bootstrap,
            self.work_dir,
            name,
            self.profile,
            DXPULSE_DATABASE_URL=self.database_url,
            DXPULSE_RATE_LIMIT_PER_S="1000000",
            DXPULSE_RATE_LIMIT_BURST="1000000",
        )
        # Ready, not just alive: a report sent before the producer is connected is answered 503.
        wait_http(child, "/readyz")
        return child

    def auth(self, reporter: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[reporter]}"}

    def aggregator(self, app_id: str, name: str) -> Child:
        return start_child(
            "aggregate",
            self.size.name,
            self.bootstrap,
            self.work_dir,
            name,
            self.profile,
            DXPULSE_AGGREGATE_APP_ID=app_id,
        )


async def aggregator(bench: Bench) -> None:
    """One worker's life: cold start, N reports, memory with every reporter-key, then a restart.

    The N reports are produced by a raw producer many times faster than the worker consumes, so the
    worker works through a backlog, timed from its first rollup to the last correct one.
    """
    n, keys = bench.size.throughput_reports, bench.size.reporter_keys
    app_id, worker = await bench.fresh_worker("aggregator")
    start = await end_offsets(bench.bootstrap, REPORTS)
    bench.throughput_start = start
    rollup_start = await end_offsets(bench.bootstrap, ROLLUPS)
    try:
        async with RollupWatcher(bench.bootstrap, rollup_start) as watcher:
            await produce(bench.bootstrap, REPORTS, bench.workload.messages(0, 1))
            first_rollup = bench.workload.expected_revisions(0, 1)
            ready = await _watch(bench, watcher, worker, first_rollup, "empty worker: first rollup", 300)
            cold_start_s = ready - worker.started
            # Its start-up work done before the timing: the gauges' re-read of the rollup topic,
            # which earlier scenarios filled, is not what this figure is about (it is paced anyway).
            reread_s = await _gauges_reread(bench, worker)
            empty_kib = worker.rss_kib()
            expected = bench.workload.expected_revisions(0, n)
            began = time.perf_counter()
            await produce(
                bench.bootstrap, REPORTS, bench.workload.messages(1, n - 1), bench.task(f"producing {n:,}", n)
            )
            done = await _watch(bench, watcher, worker, expected, "aggregator: rollups correct", 3600)
            full_kib = worker.rss_kib()
            published = _published_rollups(worker)
    finally:
        worker.stop()
    raw_s = await consume_and_decode(
        bench.bootstrap, REPORTS, start, n, bench.task("raw aiokafka consume-and-decode", n)
    )
    rate, raw_rate = (n - 1) / (done - began), n / raw_s
    ceiling_rate, ceiling_batch = await _faust_ceiling(bench, start, n)
    bench.add(
        Figure(
            "aggregator",
            "throughput, one worker",
            rate,
            "reports/s",
            raw_rate,
            "raw consume+decode",
            ">= 50,000/s and >= 0.60 of the faust ceiling",
            rate >= 50_000 and rate >= 0.6 * ceiling_rate,
            f"{n:,} reports over {keys:,} reporter-keys; {published:,.0f} rollups published;"
            f" {rate / ceiling_rate:.2f} of the faust ceiling below (the target's ratio)"
            + ("" if reread_s is None else f"; timed after the worker's gauge re-read ({reread_s:.1f} s)"),
        )
    )
    bench.add(
        Figure(
            "aggregator",
            "faust ceiling: a worker that only takes and decodes",
            ceiling_rate,
            "reports/s",
            raw_rate,
            "raw consume+decode",
            "(reported: the most any faust worker does here)",
            None,
            f"the same {n:,} reports and consumer settings, batches of {ceiling_batch:,} (bench/ceiling.py)",
        )
    )
    raw_bytes = sum(len(k) + len(v) for k, v in bench.workload.messages(0, keys))
    bench.measured["throughput"] = rate
    bench.measured["memory"] = (full_kib - empty_kib) * 1024 * 100_000 / keys / 2**20
    bench.add(
        Figure(
            "memory",
            "aggregator RSS per 100,000 reporter-keys",
            bench.measured["memory"],
            "MiB",
            raw_bytes * 100_000 / keys / 2**20,
            "the reports' bytes on Kafka",
            "(reported, no target)",
            None,
            f"VmRSS {empty_kib / 1024:,.0f} MiB empty → {full_kib / 1024:,.0f} MiB with {keys:,} keys",
        )
    )
    await _recovery(bench, app_id, n, cold_start_s)


async def _faust_ceiling(bench: Bench, start: dict[int, int], n: int) -> tuple[float, int]:
    """Reports/s of a faust worker that reads the same ``n`` reports from ``start`` and only decodes
    them (faust's own cost per message, which bounds any faust aggregator here), and its batch size.

    Batches are the aggregator's, but at most a tenth of ``n``: the first batch is not timed.
    """
    app_id = f"bench-ceiling-{bench.run_id}"
    await commit_offsets(bench.bootstrap, app_id, REPORTS, start)
    batch = min(AggregateSettings().aggregate_batch_max, max(1, n // 10))
    worker = start_child(
        *("ceiling", bench.size.name, bench.bootstrap, bench.work_dir, "ceiling", bench.profile),
        DXPULSE_AGGREGATE_APP_ID=app_id,
        DXPULSE_AGGREGATE_BATCH_MAX=str(batch),
    )
    wait_http(worker, "/metrics")
    try:
        # Timed by the worker's own stamps, so a coarse poll does not blur the figure.
        _, figures = await _counted(
            bench,
            worker,
            DECODED,
            n,
            "faust ceiling: take and decode",
            3600,
            0.5,
            (FIRST_BATCH, FIRST_AT, LAST_AT),
        )
    finally:
        worker.stop()
    if figures[LAST_AT] <= figures[FIRST_AT]:
        raise RuntimeError(f"the faust ceiling worker took all {n:,} reports in one batch: nothing to time")
    return (figures[DECODED] - figures[FIRST_BATCH]) / (figures[LAST_AT] - figures[FIRST_AT]), batch


async def _recovery(bench: Bench, app_id: str, n: int, cold_start_s: float) -> None:
    """Restart the worker (a new process, same app id) and time until probe rollups are correct."""
    keys, probes = bench.size.reporter_keys, min(12, bench.size.reporter_keys)
    # Only the scopes the probes change: an unchanged figure is rightly not published again. Worked
    # out before the restart: it takes the bench seconds of CPU at full size, which were on the clock
    # (and took a core from the worker) when done after it.
    before = bench.workload.expected_revisions(0, n)
    after = bench.workload.expected_revisions(0, n + probes)
    changed = {key: rev for key, rev in after.items() if before.get(key) != rev}
    rollup_start = await end_offsets(bench.bootstrap, ROLLUPS)
    async with RollupWatcher(bench.bootstrap, rollup_start) as watcher:
        second = bench.aggregator(app_id, "aggregator-restarted")
        try:
            await produce(bench.bootstrap, REPORTS, bench.workload.messages(n, probes))
            done = await _watch(bench, watcher, second, changed, "restarted worker: correct rollups", 900)
            recovered_kib = second.rss_kib()
        finally:
            second.stop()
    recovery_s = done - second.started
    bench.measured["recovery"] = recovery_s
    bench.add(
        Figure(
            "recovery",
            f"restart with {keys:,} reporter-keys → correct rollups",
            recovery_s,
            "s",
            cold_start_s,
            "empty worker start → first rollup",
            "<= 10 s",
            recovery_s <= 10,
            f"SIGTERM, then a new process; {probes} probe reports;"
            f" RSS after recovery {recovered_kib / 1024:,.0f} MiB",
        )
    )


def _published_rollups(worker: Child) -> float:
    """The worker's own count of rollups published (its /metrics), to see how much batches coalesce."""
    published = "dxpulse_aggregate_rollups_published"
    figures = _metrics(worker, (published,))
    if published not in figures:
        raise RuntimeError(f"{worker.name}'s /metrics has no {published}; see {worker.log}")
    return figures[published]


async def _gauges_reread(bench: Bench, worker: Child) -> float | None:
    """Wait until a worker has re-read the rollup topic for its gauges; how long that took (None:
    a checkout without the re-read's metric)."""
    count, took = "dxpulse_rollup_gauges_reread_seconds_count", "dxpulse_rollup_gauges_reread_seconds_sum"
    if count not in _metrics(worker, (count,)):
        return None
    _, figures = await _counted(bench, worker, count, 1, "worker: gauges' re-read", 600, 0.2, (took,))
    return figures[took]


def _metrics(worker: Child, names: tuple[str, ...]) -> dict[str, float]:
    """The samples ``names`` (counters with their ``_total``; a labelled one written out whole, as
    /metrics prints it) from a child's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{worker.port}/metrics", timeout=10.0).text
    wanted = {*names, *(f"{name}_total" for name in names)}
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[name.removesuffix("_total")] = float(value)
    return found


async def _watch(
    bench: Bench, watcher: RollupWatcher, worker: Child, expected: dict[str, str], what: str, deadline: float
) -> float:
    """Wait for ``expected`` while checking the worker is alive; returns perf_counter() when done."""
    advance = bench.task(what, len(expected))
    give_up = time.perf_counter() + deadline
    while True:
        worker.check_alive()
        try:
            return await watcher.until(expected, min(5.0, give_up - time.perf_counter()), advance)
        except TimeoutError:
            if time.perf_counter() >= give_up:
                raise


def batch_path() -> str | None:
    """The ingest batch endpoint's path when this checkout has one (another branch adds it)."""
    api = create_ingest(IngestSettings())
    for route in api.routes:
        path: str = getattr(route, "path", "")
        methods: set[str] = getattr(route, "methods", None) or set()
        if "POST" in methods and "batch" in path:
            return str(path)
    return None


def http_client(connections: int) -> aiohttp.ClientSession:
    """The load generator's HTTP client: aiohttp, because httpx's own CPU cost capped the figures
    at ~1/8 of what the ingest service sustains on this machine (measured while writing bench)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        headers={"content-type": "application/json"},
        timeout=aiohttp.ClientTimeout(total=60),
    )


Request = tuple[bytes, dict[str, str], int]
"""A body, its headers and how many reports it carries."""


async def _post_all(url: str, requests: list[Request], advance: Callable[[int], None]) -> tuple[float, int]:
    """POST every request with HTTP_CONCURRENCY connections; (seconds, reports not accepted)."""
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    refused = 0
    async with http_client(HTTP_CONCURRENCY) as client:

        async def sender() -> None:
            nonlocal refused
            while not queue.empty():
                body, headers, count = queue.get_nowait()
                async with client.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                    if response.status >= 300:
                        refused += count
                    elif count > 1:  # a batch answers per report
                        refused += count - int(json.loads(answer)["accepted"])
                advance(count)

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(HTTP_CONCURRENCY)))
        return time.perf_counter() - started, refused


async def ingest_throughput(bench: Bench) -> None:
    """Single-report requests and batches of 500, each against a raw producer of the same reports."""
    n = bench.size.ingest_reports
    offset = 10_000_000  # seqs of their own, so no other scenario's report is a duplicate
    singles = [bench.workload.report(offset + i) for i in range(n)]
    # A token sends as its own reporter only, so each batch is one reporter's reports.
    reporters = sorted(bench.workload.reporters)
    batches = [
        [
            bench.workload.reporter_report(reporters[b % len(reporters)], offset + n + b * BATCH + i)
            for i in range(BATCH)
        ]
        for b in range(max(1, bench.size.ingest_batch_reports // BATCH))
    ]
    api = await bench.ingest("ingest")
    try:
        url = f"http://127.0.0.1:{api.port}"
        raw_rate = await _raw_rate(bench, singles, "raw producer: the single reports")
        requests = [(r.model_dump_json().encode(), bench.auth(r.reporter), 1) for r in singles]
        seconds, refused = await _post_all(
            f"{url}/v1/reports", requests, bench.task("ingest: single reports", n)
        )
        if refused:
            raise RuntimeError(f"ingest refused {refused} of {n} benchmark reports; see {api.log}")
        bench.ingest_rate = n / seconds
        bench.add(
            Figure(
                "ingest",
                "single-report requests",
                n / seconds,
                "reports/s",
                raw_rate,
                "raw producer acks=all",
                ">= 5,000 requests/s",
                n / seconds >= 5_000,
                f"{n:,} reports, {HTTP_CONCURRENCY} connections",
            )
        )
        path = batch_path()
        if path is None:
            bench.add(
                Figure(
                    "ingest",
                    f"batches of {BATCH}",
                    float("nan"),
                    "reports/s",
                    raw_rate,
                    "raw producer acks=all",
                    ">= 30,000/s and >= 0.50 of raw",
                    None,
                    "not measured: this checkout has no batch endpoint yet",
                )
            )
            return
        flat = [r for batch in batches for r in batch]
        raw_batch_rate = await _raw_rate(bench, flat, "raw producer: the batched reports")
        requests = [
            (
                json.dumps({"reports": [r.model_dump(mode="json") for r in batch]}).encode(),
                bench.auth(batch[0].reporter),
                len(batch),
            )
            for batch in batches
        ]
        seconds, refused = await _post_all(
            f"{url}{path}", requests, bench.task(f"ingest: batches of {BATCH}", len(flat))
        )
        rate = len(flat) / seconds
        bench.add(
            Figure(
                "ingest",
                f"batches of {BATCH}",
                rate,
                "reports/s",
                raw_batch_rate,
                "raw producer acks=all",
                ">= 30,000/s and >= 0.50 of raw",
                rate >= 30_000 and rate >= 0.5 * raw_batch_rate and not refused,
                f"POST {path}, {len(batches)} batches of one reporter each"
                + (f"; {refused} reports not accepted" if refused else ""),
            )
        )
    finally:
        api.stop()


async def _raw_rate(bench: Bench, reports: list[Report], what: str) -> float:
    """Reports/s of a raw aiokafka producer (acks=all) sending exactly these reports."""
    messages = [(report_key(r.indicator, r.period).encode(), r.model_dump_json().encode()) for r in reports]
    count, seconds = await produce(bench.bootstrap, REPORTS, messages, bench.task(what, len(messages)))
    return count / seconds


def _ms_of(observed_at: str | None) -> int:
    """The sequence number of the newest report a rollup rests on (reports are OBSERVED_BASE + seq ms)."""
    if observed_at is None:
        return -1
    return round((datetime.fromisoformat(observed_at) - OBSERVED_BASE).total_seconds() * 1000)


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


async def _paced(
    rate: float, count: int, send: Callable[[int], Awaitable[None]], advance: Callable[[int], None]
) -> float:
    """Call ``send(i)`` at ``rate`` per second (open loop, bounded in flight); the achieved rate."""
    in_flight = asyncio.Semaphore(HTTP_CONCURRENCY * 4)
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        try:
            await send(i)
        finally:
            in_flight.release()
            advance(1)

    started = time.perf_counter()
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await in_flight.acquire()
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return count / (time.perf_counter() - started)


async def end_to_end_latency(bench: Bench, rate_override: float | None) -> None:
    """HTTP 202 until the rollup resting on the report is published, at a steady offered rate: as
    single-report requests, then as small batches (``LATENCY_BATCH`` reports of one reporter each).

    Single reports are offered at the size's rate unless the machine's single-report ingest,
    measured earlier in the run, is lower (then 70% of it); batches always at the size's rate.
    """
    offered = rate_override or float(bench.size.latency_rate)
    rate, note = offered, ""
    if rate_override is None and bench.ingest_rate is not None and bench.ingest_rate * 0.7 < rate:
        rate = round(bench.ingest_rate * 0.7)
        note = f"{bench.size.latency_rate:,}/s is beyond this machine's single-report ingest; 70% of it. "
    await _latency(bench, rate, 1, note)
    await _latency(bench, offered, LATENCY_BATCH, "")


LATENCY_BATCH = 10
"""Reports per request in the batched latency run: a local system sending one period's figures at once."""


async def _latency(bench: Bench, rate: float, batch: int, note: str) -> None:
    """One latency run: ``rate`` reports/s in requests of ``batch`` reports (1: ``POST /v1/reports``)."""
    path = "/v1/reports" if batch == 1 else batch_path()
    if path is None:
        return  # a checkout without the batch endpoint
    requests = max(1, int(rate * bench.size.latency_seconds) // batch)
    count = requests * batch
    offset = 20_000_000 if batch == 1 else 25_000_000  # seqs of their own: no report is a duplicate
    if batch == 1:
        reports = [bench.workload.report(offset + i) for i in range(count)]
    else:  # a token sends as its own reporter only: one reporter's reports per request
        reporters = sorted(bench.workload.reporters)
        sender = [reporters[i // batch % len(reporters)] for i in range(count)]
        reports = [bench.workload.reporter_report(sender[i], offset + i) for i in range(count)]
    bodies = [
        reports[i].model_dump_json().encode()
        if batch == 1
        else json.dumps({"reports": [r.model_dump(mode="json") for r in reports[i : i + batch]]}).encode()
        for i in range(0, count, batch)
    ]
    accepted = [0.0] * count
    what = "latency" if batch == 1 else f"latency in batches of {batch}"

    _, worker = await bench.fresh_worker("latency" if batch == 1 else "latency-batches")
    api = await bench.ingest("latency-ingest" if batch == 1 else "latency-batches-ingest")
    try:
        rollup_start = await end_offsets(bench.bootstrap, ROLLUPS)
        async with (
            http_client(HTTP_CONCURRENCY * 4) as client,
            RollupWatcher(bench.bootstrap, rollup_start, keep_history=True) as watcher,
        ):
            url = f"http://127.0.0.1:{api.port}"
            warm = bench.workload.report(offset - 1)
            warm_body = warm.model_dump_json().encode()
            async with client.post(
                f"{url}/v1/reports", data=warm_body, headers=bench.auth(warm.reporter)
            ) as response:
                warm_answer = await response.text()
                if response.status != 202:
                    raise RuntimeError(f"ingest answered {response.status}: {warm_answer}")
            await _watch(
                bench,
                watcher,
                worker,
                bench.workload.expected_revisions(offset - 1, 1),
                "worker warm-up",
                300,
            )

            async def send(request: int) -> None:
                first = request * batch
                async with client.post(
                    f"{url}{path}", data=bodies[request], headers=bench.auth(reports[first].reporter)
                ) as response:
                    text = await response.text()
                    # A batch answers 200 with a result per report, once Kafka has them all.
                    done = response.status == 202 if batch == 1 else response.status == 200
                    if not done or (batch > 1 and json.loads(text)["accepted"] != batch):
                        raise RuntimeError(f"ingest answered {response.status}: {text}")
                accepted[first : first + batch] = [time.time()] * batch

            polling = asyncio.create_task(_poll_forever(watcher))
            try:
                achieved = batch * await _paced(
                    rate / batch, requests, send, bench.task(f"{what}: {rate:,.0f} reports/s", requests)
                )
                expected = bench.workload.revisions_after([warm, *reports])
                await _watch(bench, watcher, worker, expected, f"{what}: last rollups", 600)
            finally:
                polling.cancel()
    finally:
        api.stop()
        worker.stop()
    published: dict[str, tuple[list[int], list[int]]] = {}
    for key, seen in watcher.history:
        indicator, period, scope = key.split("|")
        if scope == "national":
            seqs, times = published.setdefault(f"{indicator}|{period}", ([], []))
            seqs.append(_ms_of(seen.latest_observed_at) - offset)
            times.append(seen.published_ms)
    latencies = []
    for i, report in enumerate(reports):
        seqs, times = published[f"{report.indicator}|{report.period}"]
        at = bisect.bisect_left(seqs, i)
        latencies.append(max(0.0, times[at] / 1000 - accepted[i]))
    p50, p95, p99 = _percentiles(latencies)
    base50, base95, base99 = await _raw_latency(bench, rate, count)
    sent = f"{count:,} single-report requests" if batch == 1 else f"{requests:,} requests of {batch} reports"
    for label, value, base in (("p50", p50, base50), ("p95", p95, base95), ("p99", p99, base99)):
        bench.add(
            Figure(
                "end-to-end",
                f"latency {label} at {achieved:,.0f} reports/s"
                if batch == 1
                else f"latency in batches of {batch}, {label} at {achieved:,.0f} reports/s",
                value * 1000,
                "ms",
                base * 1000,
                "raw produce→consume",
                "p99 <= 300 ms" if label == "p99" else "",
                (value <= 0.3) if label == "p99" else None,
                note + f"{sent}; HTTP answer → rollup publish time" if label == "p99" else "",
            )
        )


async def _poll_forever(watcher: RollupWatcher) -> None:
    while True:
        await watcher.poll(50)


async def _raw_latency(bench: Bench, rate: float, count: int) -> tuple[float, float, float]:
    """Raw aiokafka at the same rate: producer acks=all send → consumer receipt, per message."""
    start = await end_offsets(bench.bootstrap, REPORTS)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bench.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20, **security()
    )
    producer = new_producer(bench.bootstrap)
    await consumer.start()
    await producer.start()
    latencies: list[float] = []
    try:
        consumer.assign([TopicPartition(REPORTS, p) for p in start])
        for p, offset in start.items():
            consumer.seek(TopicPartition(REPORTS, p), offset)

        async def receive() -> None:
            while len(latencies) < count:
                for records in (await consumer.getmany(timeout_ms=50)).values():
                    now = time.time()
                    latencies.extend(now - r.timestamp / 1000 for r in records)

        receiving = asyncio.create_task(receive())
        messages = list(bench.workload.messages(30_000_000, count))

        async def send(i: int) -> None:
            key, value = messages[i]
            await producer.send_and_wait(REPORTS, value=value, key=key)

        await _paced(rate, count, send, bench.task("raw produce→consume latency", count))
        await asyncio.wait_for(receiving, 120)
    finally:
        await producer.stop()
        await consumer.stop()
    return _percentiles([max(0.0, x) for x in latencies])


HISTORY_RECORDED = 'dxpulse_history_reports_read_total{outcome="recorded"}'


async def history_writer(bench: Bench) -> None:
    """One history writer taking N new reports into reporter_latest (PostgreSQL), against raw
    clients reading the same reports and copying their rows into PostgreSQL.

    As for the aggregator, the reports are produced far faster than the writer takes them, so it
    works through a backlog; timed from the first produced report until its /metrics count N
    recorded (each batch is counted once its transaction committed).
    """
    n = bench.size.throughput_reports
    offset = 40_000_000  # seqs of their own: newer than any other scenario's, so every upsert writes
    await apply_migrations(bench.database_url)
    app_id = f"bench-history-{bench.run_id}"
    for topic in (REPORTS, ROLLUPS):  # the group starts at the current end of both topics it reads
        await commit_offsets(bench.bootstrap, app_id, topic, await end_offsets(bench.bootstrap, topic))
    start = await end_offsets(bench.bootstrap, REPORTS)
    worker = start_child(
        *("history", bench.size.name, bench.bootstrap, bench.work_dir, "history", bench.profile),
        DXPULSE_HISTORY_APP_ID=app_id,
        DXPULSE_DATABASE_URL=bench.database_url,
    )
    try:
        wait_http(worker, "/metrics")
        await produce(bench.bootstrap, REPORTS, bench.workload.messages(offset, 1))
        await _counted(bench, worker, HISTORY_RECORDED, 1, "history writer: first report", 300)
        began = time.perf_counter()
        await produce(
            bench.bootstrap,
            REPORTS,
            bench.workload.messages(offset + 1, n - 1),
            bench.task(f"producing {n:,}", n),
        )
        done, _ = await _counted(bench, worker, HISTORY_RECORDED, n, "history writer: reports recorded", 3600)
    finally:
        worker.stop()
    raw_s = await _raw_history(bench, start, n)
    rate, raw_rate = (n - 1) / (done - began), n / raw_s
    bench.add(
        Figure(
            "history",
            "reports written to reporter_latest, one writer",
            rate,
            "reports/s",
            raw_rate,
            "raw consume+decode+COPY",
            "(reported, no target)",
            None,
            f"{n:,} reports, upserted in transactions of up to {HISTORY_BATCH}",
        )
    )


async def _counted(
    bench: Bench,
    worker: Child,
    counter: str,
    count: int,
    what: str,
    deadline_s: float,
    poll_s: float = 0.05,
    also: tuple[str, ...] = (),
) -> tuple[float, dict[str, float]]:
    """Poll a child's /metrics until ``counter`` reaches ``count``; perf_counter() then, and the
    last samples of ``counter`` and ``also``."""
    advance = bench.task(what, count)
    give_up = time.perf_counter() + deadline_s
    figures: dict[str, float] = {}
    seen = 0.0
    while seen < count:
        worker.check_alive()
        if time.perf_counter() > give_up:
            raise TimeoutError(
                f"{worker.name} counted {seen:,.0f} of {count:,} ({counter}); see {worker.log}"
            )
        await asyncio.sleep(poll_s)
        figures = _metrics(worker, (counter, *also))
        now = figures.get(counter, 0.0)
        advance(int(now - seen))
        seen = now
    return time.perf_counter(), figures


async def _raw_history(bench: Bench, start: dict[int, int], n: int) -> float:
    """Seconds for raw aiokafka and asyncpg to read the same ``n`` reports, decode them and COPY
    their reporter_latest rows into a scratch table of the same columns, in batches of the writer's
    size: what Kafka and PostgreSQL take on this machine without the writer's upsert and faust."""
    connection = await asyncpg.connect(bench.database_url)
    try:
        await connection.execute("CREATE TEMP TABLE bench_latest (LIKE reporter_latest INCLUDING DEFAULTS)")
        columns = ["reporter", "indicator", "period", "observed_at", "event_id", "kind", "value"]
        advance = bench.task("raw consume+decode+COPY", n)
        started: float | None = None
        async for records in read_batches(bench.bootstrap, REPORTS, start, n, HISTORY_BATCH):
            started = started or time.perf_counter()
            rows = [latest_row(Report.model_validate_json(record.value)) for record in records]
            await connection.copy_records_to_table("bench_latest", records=rows, columns=columns)
            advance(len(records))
        return time.perf_counter() - (started or time.perf_counter())
    finally:
        await connection.close()
