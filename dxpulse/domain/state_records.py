"""The aggregator's table records: an (indicator, period)'s state as a period record, bucket records
and delta records, and the changelog writes that keep them (``writes_of``)."""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dxpulse.domain.rollup import PeriodState, Snapshot

SNAPSHOT_BUCKETS = 8
"""How many bucket records hold the reporters' snapshots of one (indicator, period).

A restart reads every live record at faust's per-record cost, so fewer, larger records recover
faster (docs/design/partitioning-and-state.md): with 1,000 reporters a bucket holds ~125
snapshots (~25 KB). Buckets are rewritten only all together, once the delta records hold half the
state (``writes_of``), so their count does not change what a write costs; 64 doubled the restart.
Changing it moves reporters between buckets. Records written before are still read
(``snapshots_in``), and the aggregator rewrites every bucket of an (indicator, period) whose stored
buckets do not match ``bucket_of`` (``misplaced``), so none keeps a reporter that moved.
"""


def holds_snapshots(period: Mapping[str, Any] | None) -> bool:
    """Whether a period record carries snapshots itself (written before the per-reporter records)."""
    return bool(period and period.get("latest"))


@functools.lru_cache(maxsize=1 << 16)
def bucket_of(reporter: str) -> str:
    """The name of the bucket record holding ``reporter``'s snapshot, e.g. "#07" (stable across runs)."""
    return f"#{zlib.crc32(reporter.encode()) % SNAPSHOT_BUCKETS:02d}"


def records_of(
    before: PeriodState,
    after: PeriodState,
    reporters: Iterable[str],
    *,
    whole: bool = False,
    carry_snapshots: bool = False,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The changelog records that take a stored ``before`` to ``after``: the period record, and by
    bucket name (``bucket_of``) every bucket holding one of ``reporters`` (those of the reports
    applied) whose snapshot changed. A bucket record is whole, and encoded (``bucket_record``).

    Write the period record first, then the bucket records, all to one changelog partition (which
    Kafka keeps in order): a crash then keeps a prefix. If the period record got through, its
    ``last_offset`` makes the redelivered batch re-apply the missing snapshots and re-send every
    rollup (``step_many``); if not, the reports change the state again and publish as the first time.

    ``whole``: every bucket is written, as when ``before`` came from records of an earlier format
    (the old records are deleted only after this write). ``carry_snapshots``: this period record
    holds every snapshot too, so a crash halfway loses none. That is needed when the stored period
    record held them (``holds_snapshots``), and when buckets are re-cut (``misplaced``): rewriting a
    bucket drops the reporters that moved before their new bucket is written.
    """
    period = after.to_json() if carry_snapshots else after.period_record()
    if whole:
        touched = {bucket_of(reporter) for reporter in after.latest}
    else:
        touched = {bucket_of(reporter) for reporter, _ in changed_snapshots(before, after, reporters)}
    members: dict[str, list[tuple[str, Snapshot]]] = {}
    if touched:
        for reporter, snap in after.latest.items():
            bucket = bucket_of(reporter)
            if bucket in touched:
                members.setdefault(bucket, []).append((reporter, snap))
    return period, {bucket: bucket_record(held) for bucket, held in members.items()}


def changed_snapshots(
    before: PeriodState, after: PeriodState, reporters: Iterable[str]
) -> list[tuple[str, Snapshot]]:
    """Each of ``reporters`` (those of the reports applied) whose snapshot ``after`` is new, with it."""
    return [
        (reporter, after.latest[reporter])
        for reporter in dict.fromkeys(reporters)
        if reporter in after.latest and after.latest[reporter] is not before.latest.get(reporter)
    ]


DELTA_PREFIX = "#+"
"""Names of delta records ("#+1", "#+2", ...): the snapshots one batch changed, not a whole bucket.

Earlier versions read a delta as a bucket in the wrong place (``misplaced``), so they rewrite every
bucket and delete the deltas: going back a version loses nothing.
"""

DELTAS_AT_MOST = 32
"""Delta records an (indicator, period) keeps before its buckets are rewritten (``writes_of``)."""


def is_delta(name: str) -> bool:
    """Whether a snapshot record's name (after "indicator|period|") is a delta record's."""
    return name.startswith(DELTA_PREFIX)


@dataclass(frozen=True)
class StoredRecords:
    """What an (indicator, period)'s snapshot records in the table are, beside its state.

    ``whole``: they are of an earlier format (snapshots in the period record, one record per
    reporter, or buckets of another ``SNAPSHOT_BUCKETS``), so the next write rewrites every bucket;
    ``stale``: the names of the records that write replaces and then deletes; ``carry_snapshots``:
    see ``records_of``. ``deltas``: the live delta records, holding ``in_deltas`` snapshots.
    """

    whole: bool = False
    stale: tuple[str, ...] = ()
    carry_snapshots: bool = False
    deltas: tuple[str, ...] = ()
    in_deltas: int = 0


def stored_records(
    period: Mapping[str, Any] | None,
    records: Mapping[str, Mapping[str, Any]],
    singles: Mapping[str, Any] | None = None,
) -> StoredRecords:
    """What an (indicator, period)'s records read from the table are: ``period`` its period record,
    ``records`` its bucket and delta records by name, ``singles`` its one-reporter records (the
    format before buckets) by reporter."""
    # The old single records keep their snapshots until the buckets are in; re-cut buckets do not.
    carry_snapshots = holds_snapshots(period) or misplaced(records)
    if carry_snapshots or singles:
        return StoredRecords(whole=True, stale=(*(singles or {}), *records), carry_snapshots=carry_snapshots)
    deltas = tuple(name for name in records if is_delta(name))
    return StoredRecords(deltas=deltas, in_deltas=sum(len(records[name]) for name in deltas))


Write = tuple[str | None, Any]
"""One changelog write of an (indicator, period): (None, period record), (record name, encoded
record), or (record name, None) to delete it."""


def writes_of(
    before: PeriodState, after: PeriodState, reporters: Iterable[str], stored: StoredRecords
) -> tuple[list[Write], StoredRecords]:
    """The changelog writes that take a stored ``before`` to ``after``, in order, and what the
    table holds then. ``reporters``: those of the reports applied.

    Usually the period record and one delta record of the snapshots that changed: a busy worker
    changes ~50 of 1,000 reporters of an (indicator, period) per batch, and rewriting the buckets
    holding them wrote ten times the reports' own bytes (docs/design/partitioning-and-state.md). Once
    the deltas would hold more than half as many snapshots as the state, or ``DELTAS_AT_MOST`` of them, every
    bucket is rewritten and then the deltas are deleted: a restart reads at most one and a half
    times the state. Tables of earlier formats (``stored.whole``) are rewritten the same way.

    Any prefix of the writes keeps every snapshot (see ``records_of``): a delta's reporters are
    also in the buckets written before it is deleted, and a reporter in both keeps its newest
    snapshot when read (``snapshots_in``).
    """
    changed = changed_snapshots(before, after, reporters)
    pending = stored.in_deltas + len(changed)
    if stored.whole or len(stored.deltas) >= DELTAS_AT_MOST or 2 * pending > len(after.latest):
        period, buckets = records_of(before, after, (), whole=True, carry_snapshots=stored.carry_snapshots)
        writes: list[Write] = [(None, period), *buckets.items()]
        writes += [
            (name, None) for name in dict.fromkeys((*stored.stale, *stored.deltas)) if name not in buckets
        ]
        return writes, StoredRecords()
    if not changed:
        return [(None, after.period_record())], stored
    name = f"{DELTA_PREFIX}{max((int(d.removeprefix(DELTA_PREFIX)) for d in stored.deltas), default=0) + 1}"
    return (
        [(None, after.period_record()), (name, bucket_record(changed))],
        replace(stored, deltas=(*stored.deltas, name), in_deltas=pending),
    )


def bucket_record(snapshots: Iterable[tuple[str, Snapshot]]) -> bytes:
    """A bucket record as its changelog value: the JSON object reporter → ``Snapshot.to_json``,
    joined from each snapshot's ``encoded`` form rather than encoded anew."""
    return b"{" + b",".join(_member_prefix(reporter) + snap.encoded() for reporter, snap in snapshots) + b"}"


@functools.lru_cache(maxsize=1 << 16)
def _member_prefix(reporter: str) -> bytes:
    return json.dumps(reporter).encode() + b":"


def misplaced(buckets: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether stored bucket records (by name; deltas are not buckets) hold a reporter ``bucket_of``
    puts elsewhere: they were written under another ``SNAPSHOT_BUCKETS``, and rewriting one of them
    would drop reporters."""
    return any(
        bucket_of(reporter) != name
        for name, records in buckets.items()
        if not is_delta(name)
        for reporter in records
    )


def snapshots_in(
    buckets: Iterable[Mapping[str, Mapping[str, Any]]], singles: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Mapping[str, Any]]:
    """Reporter → snapshot record from an (indicator, period)'s bucket records, and from the
    one-record-per-reporter ``singles`` of the format before buckets.

    A reporter found twice (in a bucket and a delta record, a bucket written under another
    ``SNAPSHOT_BUCKETS``, or a single not yet replaced) keeps its newest snapshot, as ``apply`` would.
    """
    found: dict[str, Mapping[str, Any]] = {}
    for records in (*buckets, *([singles] if singles else [])):
        for reporter, raw in records.items():
            known = found.get(reporter)
            if known is None or Snapshot.from_json(known).order < Snapshot.from_json(raw).order:
                found[reporter] = raw
    return found


@dataclass
class StoredSnapshots:
    """An (indicator, period)'s snapshot records as found in the table."""

    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Bucket or delta record name ("#07", "#+3") → reporter → snapshot."""
    singles: dict[str, Any] = field(default_factory=dict)
    """Reporter → snapshot, from the one-record-per-reporter format before buckets."""


def snapshot_key(period_key: str, name: str) -> str:
    """The table key of a bucket of snapshots ("indicator|period|#07"), or of one reporter's snapshot
    ("indicator|period|province:79", the format before buckets)."""
    return f"{period_key}|{name}"


def group_snapshot_records(items: Iterable[tuple[str, Any]]) -> dict[str, StoredSnapshots]:
    """The table's snapshot records, by their (indicator, period) key.

    A bucket this worker wrote is held as it went to the changelog (JSON bytes: ``bucket_record``);
    one recovered from the changelog, as faust decoded it.
    """
    grouped: dict[str, StoredSnapshots] = {}
    for key, value in items:
        period_key, _, name = key.rpartition("|")
        if period_key.count("|") != 1 or value is None:  # period keys have one "|"
            continue
        if isinstance(value, bytes):
            value = json.loads(value)
        stored = grouped.setdefault(period_key, StoredSnapshots())
        if name.startswith("#"):
            stored.buckets[name] = value
        else:
            stored.singles[name] = value
    return grouped
