"""Properties of batch application (``step_many``): the aggregator's batches change no final figure."""

from __future__ import annotations

import itertools
import json
import zlib
from collections import Counter
from typing import Any, TypeVar, cast

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.domain.rollup import PeriodState, Snapshot, apply, apply_all, compute_rollups, step_many
from dxpulse.domain.state_records import (
    DELTAS_AT_MOST,
    SNAPSHOT_BUCKETS,
    StoredRecords,
    bucket_of,
    bucket_record,
    group_snapshot_records,
    holds_snapshots,
    is_delta,
    misplaced,
    records_of,
    snapshot_key,
    snapshots_in,
    stored_records,
    writes_of,
)
from dxpulse.domain.state_records import Write as RecordWrite
from schemas import Report, Rollup
from tests.unit.conftest import COMPUTED_AT, feed, flag, last_per_scope, make_report, ratio
from tests.unit.domain.test_rollup_properties import (
    PERIOD,
    PROPERTY_SETTINGS,
    _deliveries,
    _flag_values,
    _ratio_values,
)


def _feed_batches(
    batches: list[list[Report]], indicator_id: str
) -> tuple[PeriodState, list[list[Rollup]], int]:
    indicator = default_catalog()[indicator_id]
    period = parse_period(PERIOD, indicator.period_type)
    state = PeriodState()
    published = []
    changed = 0
    for batch in batches:
        state, fresh, n = step_many(state, batch, indicator, period, default_registry(), COMPUTED_AT)
        published.append(fresh)
        changed += n
    return state, published, changed


T = TypeVar("T")


def _split(reports: list[T], cuts: list[int]) -> list[list[T]]:
    bounds = sorted({0, len(reports), *(c % (len(reports) + 1) for c in cuts)})
    return [reports[a:b] for a, b in itertools.pairwise(bounds)]


@PROPERTY_SETTINGS
@given(
    st.sampled_from([("emc_connection", _flag_values()), ("online_records_rate", _ratio_values())]).flatmap(
        lambda pair: st.tuples(st.just(pair[0]), _deliveries(pair[0], pair[1]))
    ),
    st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_batches_end_in_the_state_and_figures_of_one_report_at_a_time(
    case: tuple[str, list[Report]], cuts: list[int]
) -> None:
    indicator, deliveries = case
    one_by_one, published = feed(deliveries, indicator, PERIOD)
    batched, batch_published, changed = _feed_batches(_split(deliveries, cuts), indicator)
    assert batched.latest == one_by_one.latest
    assert batched.published == one_by_one.published
    last, batch_last = last_per_scope(published), last_per_scope(batch_published)
    assert {s: r.revision for s, r in batch_last.items()} == {s: r.revision for s, r in last.items()}
    # A batch publishes each scope at most once.
    assert all(len({r.scope for r in fresh}) == len(fresh) for fresh in batch_published)
    assert 0 < changed <= len(deliveries)


def test_apply_all_names_only_reports_that_change_the_latest_values() -> None:
    first = make_report("province:01", flag(True), minutes=1)
    older = make_report("province:01", flag(False), minutes=0)
    other = make_report("province:79", flag(True))
    latest, changing = apply_all({}, [first, older, first, other])
    assert changing == [0, 3]
    assert latest is not None
    assert set(latest) == {"province:01", "province:79"}
    assert latest["province:01"].event_id == str(first.event_id)
    assert apply_all(latest, [older, first]) == (None, [])
    assert apply(latest, older) is None


def _step(
    state: PeriodState, reports: list[Report], offsets: list[int | None] | None = None
) -> tuple[PeriodState, list[Rollup]]:
    indicator = default_catalog()["online_records_rate"]
    period = parse_period(PERIOD, indicator.period_type)
    new, fresh, _ = step_many(state, reports, indicator, period, default_registry(), COMPUTED_AT, offsets)
    return new, fresh


Changelog = tuple[dict[str, Any] | None, dict[str, Any]]
"""A table's view of one (indicator, period): its period record and its bucket records by name
(as written, JSON bytes, or as decoded)."""


def _decoded(record: Any) -> dict[str, Any]:
    """A bucket record as recovery reads it: faust decodes the changelog value as JSON."""
    return cast(dict[str, Any], json.loads(record)) if isinstance(record, bytes) else record


def _write(
    changelog: Changelog, before: PeriodState, after: PeriodState, *, whole: bool = False
) -> Changelog:
    period, records = records_of(before, after, after.latest, whole=whole, carry_snapshots=whole)
    return period, {**changelog[1], **records}


def _read(changelog: Changelog, singles: dict[str, Any] | None = None) -> PeriodState:
    """The state a restarted worker decodes from these records (as the aggregator's ``load``)."""
    return PeriodState.from_records(changelog[0], snapshots_in(map(_decoded, changelog[1].values()), singles))


@PROPERTY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()), st.lists(st.integers(0, 40), max_size=6))
def test_the_records_of_each_batch_rebuild_the_state(deliveries: list[Report], cuts: list[int]) -> None:
    state = PeriodState()
    changelog: Changelog = (None, {})
    offset = 0
    for batch in _split(deliveries, cuts):
        offsets: list[int | None] = list(range(offset, offset + len(batch)))
        offset += len(batch)
        new, _ = _step(state, batch, offsets)
        period, records = records_of(state, new, [r.reporter for r in batch])
        changelog = (period, {**changelog[1], **records})
        # Only the buckets of the reporters the batch changed are written, each whole.
        changed = {r for r in new.latest if new.latest[r] is not state.latest.get(r)}
        assert set(records) == {bucket_of(r) for r in changed}
        for name, record in records.items():
            assert set(_decoded(record)) == {r for r in new.latest if bucket_of(r) == name}
        state = new
        assert _read(changelog) == state
        assert {r: s.offset for r, s in _read(changelog).latest.items()} == {
            r: s.offset for r, s in state.latest.items()
        }


@PROPERTY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()), st.integers(0, 20))
def test_a_whole_state_record_of_earlier_versions_is_migrated_to_reporter_records(
    deliveries: list[Report], cut: int
) -> None:
    middle = cut % (len(deliveries) + 1)
    before, _ = _step(PeriodState(), deliveries[:middle])
    legacy = before.to_json()
    assert holds_snapshots(legacy) == bool(before.latest)
    decoded = PeriodState.from_records(legacy, {})
    assert decoded == before
    after, _ = _step(decoded, deliveries[middle:])
    # The first write after the upgrade: every snapshot gets its record, and the period record keeps
    # them too until that is done; the next one is small again.
    first = _write((legacy, {}), decoded, after, whole=True)
    assert set(first[1]) == {bucket_of(r) for r in after.latest}
    assert PeriodState.from_records(first[0], {}) == after
    assert _read(first) == after
    assert not holds_snapshots(records_of(after, after, [])[0])


@PROPERTY_SETTINGS
@given(
    _deliveries("online_records_rate", _ratio_values()),
    st.integers(0, 20),
    st.integers(0, 30),
    st.lists(st.integers(0, 40), max_size=4),
)
def test_a_crash_after_any_prefix_of_a_batchs_records_still_publishes_the_final_figures(
    deliveries: list[Report], cut: int, written: int, recuts: list[int]
) -> None:
    middle = cut % (len(deliveries) + 1)
    offsets: list[int | None] = list(range(len(deliveries)))
    before, _ = _step(PeriodState(), deliveries[:middle], offsets[:middle])
    stored: Changelog = records_of(PeriodState(), before, before.latest)
    after, _ = _step(before, deliveries[middle:], offsets[middle:])
    period, records = records_of(before, after, [r.reporter for r in deliveries[middle:]])
    # Written in this order; the crash keeps a prefix, and none of the batch's rollups got out.
    writes: list[tuple[str | None, Any]] = [(None, period), *records.items()]
    kept = writes[: written % (len(writes) + 1)]
    recovered = _read(
        (
            next((value for name, value in kept if name is None), stored[0]),
            {**stored[1], **{name: value for name, value in kept if name is not None}},
        )
    )
    # Redelivered from the batch's first offset, in batches cut anywhere.
    state, published = recovered, []
    for batch in _split(list(zip(deliveries[middle:], offsets[middle:], strict=True)), recuts):
        state, fresh = _step(state, [r for r, _ in batch], [o for _, o in batch])
        published.append(fresh)
    assert state.latest == after.latest
    # What the topic shows: the figures published before the batch, then those after the crash.
    shown = {**before.published, **{s: r.revision for s, r in last_per_scope(published).items()}}
    assert shown == {r.scope: r.revision for r in compute_rollups_of(after)} or not after.latest


def compute_rollups_of(state: PeriodState) -> list[Rollup]:
    indicator = default_catalog()["online_records_rate"]
    period = parse_period(PERIOD, indicator.period_type)
    return compute_rollups(indicator, period, state.latest, default_registry(), COMPUTED_AT)


def test_a_batch_holding_the_last_changing_report_again_resends_every_rollup() -> None:
    indicator = default_catalog()["emc_connection"]
    period = parse_period(PERIOD, indicator.period_type)
    first = make_report("province:01", flag(True), minutes=1)
    second = make_report("province:79", flag(True), minutes=2)

    def run(state: PeriodState, reports: list[Report], offsets: list[int | None]) -> tuple[PeriodState, int]:
        new, fresh, _ = step_many(state, reports, indicator, period, default_registry(), COMPUTED_AT, offsets)
        return new, len(fresh)

    state, published = run(PeriodState(), [first, second], [10, 11])
    assert state.last_offset == 11
    assert published == 3
    # Redelivered after a crash between changelog write and publish: every scope again.
    assert run(state, [first, second], [10, 11]) == (state, 3)
    # The same reports at other offsets (a resend) publish nothing.
    assert run(state, [first, second], [20, 21]) == (state, 0)


Write = tuple[str, str | None, Any]
"""One changelog write of the aggregator: ("period", None, record), ("bucket", name, record) or
("delete", name, None) for a bucket or single record."""


def _crashed(table: Changelog, singles: dict[str, Any], writes: list[Write], kept: int) -> PeriodState:
    """The state decoded after a crash that kept the first ``kept`` of ``writes`` of one batch."""
    period, buckets, left = table[0], dict(table[1]), dict(singles)
    for kind, name, value in writes[:kept]:
        if kind == "period":
            period = value
        elif kind == "bucket":
            buckets[str(name)] = value
        else:
            buckets.pop(str(name), None)
            left.pop(str(name), None)
    return _read((period, buckets), left)


def _batch_after(deliveries: list[Report], cut: int) -> tuple[PeriodState, list[Report], list[int | None]]:
    """The state after the deliveries before ``cut`` (a stored table), and the batch after it with
    its offsets."""
    middle = cut % (len(deliveries) + 1)
    offsets: list[int | None] = list(range(len(deliveries)))
    before, _ = _step(PeriodState(), deliveries[:middle], offsets[:middle])
    return before, deliveries[middle:], offsets[middle:]


@PROPERTY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()), st.integers(0, 20), st.integers(0, 400))
def test_one_record_per_reporter_of_earlier_versions_is_migrated_to_buckets_even_across_a_crash(
    deliveries: list[Report], cut: int, written: int
) -> None:
    before, batch, offsets = _batch_after(deliveries, cut)
    singles = {reporter: snap.to_json() for reporter, snap in before.latest.items()}
    decoded = _read((before.period_record(), {}), singles)
    assert decoded == before
    after, _ = _step(decoded, batch, offsets)
    period, buckets = records_of(decoded, after, [r.reporter for r in batch], whole=True)
    assert set(buckets) == {bucket_of(r) for r in after.latest}
    assert not holds_snapshots(period)  # the single records keep the snapshots until the buckets are in
    # The aggregator writes the period record, every bucket, then deletes the single records; a
    # crash keeps a prefix, and the batch is redelivered.
    writes: list[Write] = [
        ("period", None, period),
        *(("bucket", name, record) for name, record in buckets.items()),
        *(("delete", reporter, None) for reporter in singles),
    ]
    kept = written % (len(writes) + 1)
    recovered = _crashed((before.period_record(), {}), singles, writes, kept)
    if kept == len(writes):
        assert recovered == after
    redelivered, fresh = _step(recovered, batch, offsets)
    assert redelivered.latest == after.latest
    # None of the batch's rollups got out before the crash: the redelivery publishes the figures.
    shown = {**before.published, **{s: r.revision for s, r in last_per_scope([fresh]).items()}}
    assert shown == {r.scope: r.revision for r in compute_rollups_of(after)} or not after.latest


def test_a_reporter_found_in_two_records_keeps_its_newest_snapshot() -> None:
    older = make_report("province:01", flag(True), minutes=1)
    newer = make_report("province:01", flag(False), minutes=2)
    old_state, _ = _step(PeriodState(), [older])
    new_state, _ = _step(PeriodState(), [newer])
    old_raw, new_raw = old_state.latest["province:01"].to_json(), new_state.latest["province:01"].to_json()
    for buckets, singles in [
        ([{"province:01": new_raw}], {"province:01": old_raw}),
        ([{"province:01": old_raw}], {"province:01": new_raw}),
        ([{"province:01": old_raw}, {"province:01": new_raw}], None),
        ([{"province:01": new_raw}, {"province:01": old_raw}], None),
    ]:
        assert snapshots_in(buckets, singles) == {"province:01": new_raw}


def test_a_bucket_record_is_the_json_of_its_snapshots() -> None:
    first = Snapshot.of(make_report("province:01", flag(True), minutes=1), offset=7)
    second = Snapshot.of(make_report("province:79", ratio(1, 3), indicator="online_records_rate", minutes=2))
    # Reporter ids are plain ASCII today; the record must stay valid JSON whatever they hold.
    members = [("province:01", first), ('odd "id" \\ \u00e9', second)]
    assert json.loads(bucket_record(members)) == {reporter: snap.to_json() for reporter, snap in members}
    assert json.loads(bucket_record([])) == {}


def test_buckets_written_under_another_bucket_count_are_misplaced() -> None:
    snapshot = make_report("province:79", flag(True), minutes=1)
    raw = _step(PeriodState(), [snapshot])[0].latest["province:79"].to_json()
    home = bucket_of("province:79")
    elsewhere = "#00" if home != "#00" else "#01"
    assert not misplaced({home: {"province:79": raw}})
    assert misplaced({elsewhere: {"province:79": raw}})
    assert not misplaced({})


def test_buckets_are_stable_and_spread_the_reporters() -> None:
    # A reporter's bucket must not change between runs: crc32, not Python's salted hash.
    assert bucket_of("province:79") == "#" + f"{zlib.crc32(b'province:79') % SNAPSHOT_BUCKETS:02d}"
    districts = [f"province:D{i:04d}" for i in range(1_000)]
    sizes = Counter(bucket_of(d) for d in districts)
    assert len(sizes) == SNAPSHOT_BUCKETS
    assert max(sizes.values()) < 2 * 1_000 / SNAPSHOT_BUCKETS


def test_the_aggregators_table_is_read_as_period_bucket_and_single_records() -> None:
    items = [
        ("emc_connection|2024-H1", {"published": {}, "last_offset": 3}),
        ("emc_connection|2024-H1|#07", {"province:79": {"a": 1}}),
        ("emc_connection|2024-H1|#11", {"province:01": {"b": 2}}),
        ("emc_connection|2024-H1|province:02", {"c": 3}),  # the format before buckets
        ("emc_connection|2024-H1|province:03", None),  # a deletion not yet compacted away
        ("edw_connection|2024-H2|#00", {"ministry:MOH": {"d": 4}}),
        ("emc_connection|2024-H1|#03", b'{"province:05":{"e":5}}'),  # written by this worker
    ]
    grouped = group_snapshot_records(items)
    assert set(grouped) == {"emc_connection|2024-H1", "edw_connection|2024-H2"}
    emc = grouped["emc_connection|2024-H1"]
    assert emc.buckets == {
        "#07": {"province:79": {"a": 1}},
        "#11": {"province:01": {"b": 2}},
        "#03": {"province:05": {"e": 5}},
    }
    assert emc.singles == {"province:02": {"c": 3}}
    assert snapshot_key("emc_connection|2024-H1", "#07") == "emc_connection|2024-H1|#07"


def _rate(reporter: str, minutes: int) -> Report:
    return make_report(reporter, ratio(1, 2), indicator="online_records_rate", minutes=minutes)


@pytest.mark.parametrize("old_count", [64, 32, 5])
@PROPERTY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()), st.integers(0, 20), st.integers(0, 400))
# Under 5 buckets province:58 was in #02, which under 8 is province:79's: #02 is rewritten without
# province:58 before province:58's new #06 is written, the crash in between.
@example([_rate("province:79", 0), _rate("province:58", 0), _rate("province:79", 1)], 2, 2)
def test_buckets_recut_under_a_new_bucket_count_lose_no_snapshot_across_a_crash(
    old_count: int, deliveries: list[Report], cut: int, written: int
) -> None:
    # 32 and 64 are counts whose buckets merge into today's 8; 5 splits them.
    before, batch, offsets = _batch_after(deliveries, cut)
    stored: dict[str, dict[str, Any]] = {}
    for reporter, snap in before.latest.items():
        stored.setdefault(f"#{zlib.crc32(reporter.encode()) % old_count:02d}", {})[reporter] = snap.to_json()
    decoded = _read((before.period_record(), stored))
    assert decoded == before
    after, _ = _step(decoded, batch, offsets)
    recut = misplaced(stored)
    period, buckets = records_of(
        decoded, after, [r.reporter for r in batch], whole=recut, carry_snapshots=recut
    )
    writes: list[Write] = [
        ("period", None, period),
        *(("bucket", name, record) for name, record in buckets.items()),
        *(("delete", name, None) for name in stored if recut and name not in buckets),
    ]
    kept = written % (len(writes) + 1)
    recovered = _crashed((before.period_record(), stored), {}, writes, kept)
    if kept == len(writes):
        assert recovered == after
    redelivered, _ = _step(recovered, batch, offsets)
    assert redelivered.latest == after.latest


# --- delta records (writes_of) ---------------------------------------------------------------------

Table = dict[str | None, Any]
"""One (indicator, period)'s records as the changelog keeps them: None → the period record, a
name → a bucket or delta record (as written: JSON bytes)."""


def _written(table: Table, writes: list[RecordWrite]) -> Table:
    """The table after ``writes`` (a None value deletes the record, as a tombstone does)."""
    after = dict(table)
    for name, value in writes:
        if name is not None and value is None:
            after.pop(name, None)
        else:
            after[name] = value
    return after


def _recovered(table: Table) -> tuple[PeriodState, StoredRecords]:
    """The state and record layout a restarted worker reads from ``table`` (as the aggregator's load)."""
    records = {name: _decoded(value) for name, value in table.items() if name is not None}
    period = table.get(None)
    state = PeriodState.from_records(period, snapshots_in(records.values()))
    return state, stored_records(period, records)


def _rates(reporters: list[str], minutes: int) -> list[Report]:
    return [_rate(reporter, minutes) for reporter in reporters]


@PROPERTY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()), st.lists(st.integers(0, 40), max_size=12))
def test_delta_records_rebuild_the_state_and_stay_within_half_of_it(
    deliveries: list[Report], cuts: list[int]
) -> None:
    state, stored, table = PeriodState(), StoredRecords(), Table()
    offset = 0
    for batch in _split(deliveries, cuts):
        offsets: list[int | None] = list(range(offset, offset + len(batch)))
        offset += len(batch)
        new, _ = _step(state, batch, offsets)
        if new is state:
            continue
        writes, stored = writes_of(state, new, [r.reporter for r in batch], stored)
        assert writes[0][0] is None  # the period record first
        table = _written(table, writes)
        recovered, layout = _recovered(table)
        assert recovered == new
        assert {r: s.offset for r, s in recovered.latest.items()} == {
            r: s.offset for r, s in new.latest.items()
        }
        assert layout == stored  # what the worker keeps of the table is what a restart reads
        assert 2 * stored.in_deltas <= len(new.latest)
        assert len(stored.deltas) <= DELTAS_AT_MOST
        state = new


@PROPERTY_SETTINGS
@given(
    _deliveries("online_records_rate", _ratio_values()),
    st.lists(st.integers(0, 40), max_size=8),
    st.integers(0, 400),
    st.lists(st.integers(0, 40), max_size=4),
)
def test_a_crash_after_any_prefix_of_a_batchs_writes_keeps_every_snapshot(
    deliveries: list[Report], cuts: list[int], written: int, recuts: list[int]
) -> None:
    batches = _split(list(zip(deliveries, range(len(deliveries)), strict=True)), cuts)
    state, stored, table = PeriodState(), StoredRecords(), Table()
    for batch in batches[:-1]:  # stored whole
        new, _ = _step(state, [r for r, _ in batch], [o for _, o in batch])
        if new is not state:
            writes, stored = writes_of(state, new, [r.reporter for r, _ in batch], stored)
            table = _written(table, writes)
        state = new
    last = batches[-1]
    after, _ = _step(state, [r for r, _ in last], [o for _, o in last])
    if after is state:
        return
    writes, _ = writes_of(state, after, [r.reporter for r, _ in last], stored)
    # The crash keeps a prefix of the batch's writes; the restarted worker reads the table, and the
    # batch is redelivered, cut anywhere.
    table = _written(table, writes[: written % (len(writes) + 1)])
    recovered, stored = _recovered(table)
    published: list[list[Rollup]] = []
    for again in _split(last, recuts):
        new, fresh = _step(recovered, [r for r, _ in again], [o for _, o in again])
        published.append(fresh)
        if new is not recovered:
            rewrites, stored = writes_of(recovered, new, [r.reporter for r, _ in again], stored)
            table = _written(table, rewrites)
        recovered = new
    assert recovered.latest == after.latest
    assert _recovered(table)[0].latest == after.latest
    shown = {**state.published, **{s: r.revision for s, r in last_per_scope(published).items()}}
    assert shown == {r.scope: r.revision for r in compute_rollups_of(after)} or not after.latest


def test_a_busy_period_is_written_as_deltas_until_its_buckets_are_rewritten() -> None:
    indicator = default_catalog()["emc_connection"]  # provinces and ministries: 85 reporters
    period = parse_period(PERIOD, indicator.period_type)
    reporters = sorted(default_registry().expected(indicator.groups, period.end))
    assert len(reporters) > 2 * DELTAS_AT_MOST

    def one_batch(state: PeriodState, stored: StoredRecords, reports: list[Report]) -> tuple[Any, ...]:
        new, _, _ = step_many(state, reports, indicator, period, default_registry(), COMPUTED_AT)
        writes, stored = writes_of(state, new, [r.reporter for r in reports], stored)
        return new, stored, writes

    def flags(names: list[str], minutes: int) -> list[Report]:
        return [make_report(name, flag(True), minutes=minutes) for name in names]

    # Everyone at once: more than half the state changes, so every bucket is written.
    state, stored, writes = one_batch(PeriodState(), StoredRecords(), flags(reporters, 0))
    assert {name for name, _ in writes[1:]} == {bucket_of(r) for r in reporters}
    assert stored == StoredRecords()
    # One reporter at a time: a delta record each, holding that one snapshot.
    for n in range(1, DELTAS_AT_MOST + 1):
        state, stored, writes = one_batch(state, stored, flags([reporters[n]], n))
        assert [name for name, _ in writes] == [None, f"#+{n}"]
        assert set(json.loads(writes[1][1])) == {reporters[n]}
    assert stored.in_deltas == DELTAS_AT_MOST
    # The next one rewrites the buckets, then deletes the deltas.
    state, stored, writes = one_batch(state, stored, flags([reporters[0]], 99))
    names = [name for name, _ in writes]
    assert names[0] is None
    assert set(names[1 : 1 + len({bucket_of(r) for r in reporters})]) == {bucket_of(r) for r in reporters}
    assert [name for name, value in writes if value is None] == [
        f"#+{n}" for n in range(1, DELTAS_AT_MOST + 1)
    ]
    assert writes[-DELTAS_AT_MOST:] == [(f"#+{n}", None) for n in range(1, DELTAS_AT_MOST + 1)]
    assert stored == StoredRecords()


def test_half_the_state_in_deltas_rewrites_the_buckets() -> None:
    reporters = [f"province:{code}" for code in ("01", "02", "04", "06")]
    state, stored = PeriodState(), StoredRecords()
    kinds = []
    for minutes, changed in enumerate([reporters, reporters[:1], reporters[1:2], reporters[2:3]]):
        new, _ = _step(state, _rates(changed, minutes))
        writes, stored = writes_of(state, new, changed, stored)
        written = [name for name, value in writes if name is not None and value is not None]
        kinds.append("delta" if all(is_delta(name) for name in written) else "buckets")
        state = new
    # Four reporters: one snapshot in deltas is a quarter, two half, three more than half.
    assert kinds == ["buckets", "delta", "delta", "buckets"]


def test_deltas_are_not_misplaced_buckets_and_go_with_a_rewrite_of_an_older_format() -> None:
    snapshot = Snapshot.of(make_report("province:79", flag(True))).to_json()
    home = bucket_of("province:79")
    current = {home: {"province:79": snapshot}, "#+3": {"province:79": snapshot}}
    assert stored_records({"published": {}, "last_offset": 1}, current) == StoredRecords(
        deltas=("#+3",), in_deltas=1
    )
    elsewhere = "#00" if home != "#00" else "#01"
    recut = {elsewhere: {"province:79": snapshot}, "#+3": {"province:79": snapshot}}
    stored = stored_records(None, recut)
    assert stored.whole
    assert stored.carry_snapshots
    assert set(stored.stale) == {elsewhere, "#+3"}
    assert stored.deltas == ()
