"""The aggregator's batch processing over an in-memory table: rollups, dead letters, changelog, restarts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.periods import parse_period
from dxpulse.domain.registry import default_registry
from dxpulse.domain.rollup import PeriodState, step_many
from dxpulse.domain.state_records import DELTA_PREFIX
from dxpulse.kafka.topics import REPORTS
from schemas import Report, Rollup
from schemas.events import report_key
from services.aggregate.processing import (
    PROCESSING_FAILED,
    WRONG_KEY,
    WRONG_PARTITION,
    ChangelogWrite,
    RawReport,
)
from tests.unit.aggregate.support import (
    PARTITIONS,
    MemoryTable,
    aggregator,
    home_partition,
    message_of,
    messages_of,
    recovered,
    run,
)
from tests.unit.conftest import COMPUTED_AT, flag, make_report, ratio
from tests.unit.domain.test_rollup_batch import _split
from tests.unit.domain.test_rollup_properties import PERIOD, SECONDARY_SETTINGS, _deliveries, _ratio_values

EMC = report_key("emc_connection", PERIOD)
RATE = report_key("online_records_rate", PERIOD)


def _stepped(
    state: PeriodState, reports: Sequence[Report], offsets: Sequence[int | None]
) -> tuple[PeriodState, list[Rollup], int]:
    """``step_many`` over one (indicator, period)'s reports, at the aggregator's clock."""
    indicator = default_catalog()[reports[0].indicator]
    period = parse_period(reports[0].period, indicator.period_type)
    return step_many(state, reports, indicator, period, default_registry(), COMPUTED_AT, offsets)


def _records(rollups: list[Rollup]) -> list[tuple[bytes, bytes]]:
    return [(rollup.key.encode(), rollup.model_dump_json().encode()) for rollup in rollups]


def _rates(reporters: Sequence[str], minutes: int) -> list[Report]:
    return [
        make_report(reporter, ratio(1, 2 + minutes), indicator="online_records_rate", minutes=minutes)
        for reporter in reporters
    ]


def _flags(reporters: Sequence[str], minutes: int) -> list[Report]:
    return [make_report(reporter, flag(minutes % 2 == 0), minutes=minutes) for reporter in reporters]


EMC_REPORTERS = sorted(
    default_registry().expected(default_catalog()["emc_connection"].groups, parse_period(PERIOD).end)
)


@SECONDARY_SETTINGS
@given(_deliveries("online_records_rate", _ratio_values()), st.lists(st.integers(0, 40), max_size=6))
def test_valid_reports_make_the_rollups_and_state_of_step_many(
    deliveries: list[Report], cuts: list[int]
) -> None:
    processor = aggregator(MemoryTable())
    state, offset = PeriodState(), 0
    for batch in _split(deliveries, cuts):
        out = run(processor, messages_of(batch, offset))
        offsets: list[int | None] = list(range(offset, offset + len(batch)))
        state, rollups, changed = _stepped(state, batch, offsets)
        offset += len(batch)
        assert out.dead_letters == []
        assert [(done.rollups, done.changed) for done in out.done] == [(rollups, changed)]
        assert out.rollups == _records(rollups)
        assert processor.state_of(RATE) == state


def test_each_indicator_and_period_of_a_batch_is_rolled_up_on_its_own() -> None:
    rates = _rates(["province:01", "province:79", "ministry:MOH"], 1)
    flags = _flags(["province:01", "province:58"], 2)
    batch = [rates[0], flags[0], rates[1], flags[1], rates[2]]
    messages = messages_of(batch)
    processor = aggregator(MemoryTable())
    out = run(processor, messages)
    rate_state, rate_rollups, _ = _stepped(PeriodState(), rates, [0, 2, 4])
    emc_state, emc_rollups, _ = _stepped(PeriodState(), flags, [1, 3])
    # In the order each (indicator, period) first comes in the batch.
    assert [done.rollups for done in out.done] == [rate_rollups, emc_rollups]
    assert [done.messages for done in out.done] == [messages[0::2], messages[1::2]]
    assert out.rollups == _records(rate_rollups + emc_rollups)
    assert (processor.state_of(RATE), processor.state_of(EMC)) == (rate_state, emc_state)
    # Each one's records on its reports' partition.
    for key in (RATE, EMC):
        assert {write.partition for write in out.changelog if write.key.startswith(key)} == {
            home_partition(key.encode())
        }


def test_a_report_keyed_right_on_another_partition_is_dead_lettered_and_changes_nothing() -> None:
    # On another partition its worker would hold a second, disagreeing state of the same figure
    # (a librdkafka client's default partitioner, or an explicit partition, puts it there).
    valid = _flags(["province:01", "province:79"], 1)
    home = home_partition(EMC.encode())
    elsewhere = message_of(valid[1], 1, partition=(home + 1) % PARTITIONS)
    processor = aggregator(MemoryTable())
    out = run(processor, [message_of(valid[0], 0), elsewhere])
    assert [(letter.message, letter.reason) for letter in out.dead_letters] == [(elsewhere, WRONG_PARTITION)]
    assert f"belong on partition {home}, not {elsewhere.partition}" in out.dead_letters[0].detail
    assert list(processor.state_of(EMC).latest) == ["province:01"]
    assert {write.partition for write in out.changelog} == {home}


def test_invalid_messages_are_dead_lettered_and_the_rest_applied() -> None:
    valid = _flags(["province:01", "province:79"], 1)
    wrong_kind = make_report("province:02", ratio(1, 2))  # emc_connection is a flag
    garbage = RawReport(EMC.encode(), b"not json", REPORTS, 3, 1)
    binary = RawReport(EMC.encode(), b"\xff\xfe\x00", REPORTS, 3, 2)
    kind = RawReport(EMC.encode(), wrong_kind.model_dump_json().encode(), REPORTS, 3, 3)
    other_key = RawReport(b"province:01", valid[1].model_dump_json().encode(), REPORTS, 3, 4)
    no_key = RawReport(None, valid[1].model_dump_json().encode(), REPORTS, 3, 5)
    good = [message_of(valid[0], 0), message_of(valid[1], 6)]
    batch = [good[0], garbage, binary, kind, other_key, no_key, good[1]]
    out = run(aggregator(MemoryTable()), batch)
    assert [(letter.message, letter.reason) for letter in out.dead_letters] == [
        (garbage, "malformed-json"),
        (binary, "malformed-json"),
        (kind, "wrong-value-kind"),
        (other_key, WRONG_KEY),
        (no_key, WRONG_KEY),
    ]
    assert f"keyed {EMC!r}" in out.dead_letters[3].detail
    _, rollups, changed = _stepped(PeriodState(), valid, [0, 6])
    assert [(done.messages, done.rollups, done.changed) for done in out.done] == [(good, rollups, changed)]


def test_a_report_whose_rolling_up_raises_is_dead_lettered_and_the_others_applied() -> None:
    def step(
        state: PeriodState, reports: Sequence[Report], *args: Any
    ) -> tuple[PeriodState, list[Rollup], int]:
        if any(report.reporter == "province:79" for report in reports):
            raise ZeroDivisionError("poison")
        return step_many(state, reports, *args)

    flags = _flags(["province:01", "province:79", "province:58"], 1)
    rates = _rates(["province:79"], 1)  # alone in its (indicator, period): nothing of it applies
    messages = messages_of([*flags, *rates])
    table = MemoryTable()
    out = run(aggregator(table, step), messages)
    assert [(letter.message, letter.reason) for letter in out.dead_letters] == [
        (messages[1], PROCESSING_FAILED),
        (messages[3], PROCESSING_FAILED),
    ]
    assert "rolling the report up failed: ZeroDivisionError('poison')" in out.dead_letters[0].detail
    state, rollups, changed = _stepped(PeriodState(), [flags[0], flags[2]], [0, 2])
    assert [(done.messages, done.rollups, done.changed) for done in out.done] == [
        ([messages[0], messages[2]], rollups, changed)
    ]
    assert aggregator(table).state_of(EMC) == state
    assert aggregator(table).state_of(RATE) == PeriodState()


def _busy_batches() -> list[list[Report]]:
    """Batches of one (indicator, period) that write every bucket, then delta records, then every
    bucket again once the deltas hold enough (``writes_of``)."""
    everyone = _flags(EMC_REPORTERS, 0)
    one_at_a_time = [_flags([reporter], minutes) for minutes, reporter in enumerate(EMC_REPORTERS[:45], 1)]
    return [everyone, *one_at_a_time]


def test_the_changelog_writes_rebuild_the_state_and_a_restart_goes_on_as_the_worker_would() -> None:
    table = MemoryTable()
    processor = aggregator(table)
    writes: list[ChangelogWrite] = []
    offset = 0
    batches = _busy_batches()
    for batch in batches[:-1]:
        out = run(processor, messages_of(batch, offset))
        offset += len(batch)
        writes += out.changelog
        # The period record first, every record on the partition of the batch's first report.
        assert out.changelog[0].key == EMC
        assert {write.partition for write in out.changelog} == {home_partition(EMC.encode())}
    assert any(DELTA_PREFIX in write.key for write in writes)
    assert any(write.value is None for write in writes)  # deltas deleted once buckets are rewritten
    state = processor.state_of(EMC)
    # A restart over the worker's own table, and one over the table recovered from the changelog.
    same_table, from_changelog = aggregator(table), aggregator(recovered(writes))
    assert same_table.state_of(EMC) == state
    assert from_changelog.state_of(EMC) == state
    # Each makes what the running worker makes of the next batch (the rollups any order).
    last = messages_of(batches[-1], offset)
    going_on = run(processor, last)
    for restarted in (run(same_table, last), run(from_changelog, last)):
        assert restarted.changelog == going_on.changelog
        assert sorted(restarted.rollups) == sorted(going_on.rollups)
        assert restarted.dead_letters == going_on.dead_letters == []


def test_a_redelivered_batch_holding_the_last_changing_report_resends_every_rollup() -> None:
    table = MemoryTable()
    flags = _flags(["province:01", "province:79"], 1)
    first = run(aggregator(table), messages_of(flags, 10))
    assert len(first.rollups) == 3  # provinces, ministries, national
    # Restarted after a crash between the changelog and the rollups: the same reports at the same
    # offsets publish every figure again, and write nothing.
    again = run(aggregator(table), messages_of(flags, 10))
    assert sorted(again.rollups) == sorted(first.rollups)
    assert again.changelog == []
    assert [done.changed for done in again.done] == [0]
    # The same reports at other offsets (a resend through the ingest) publish nothing.
    resent = run(aggregator(table), messages_of(flags, 20))
    assert (resent.rollups, resent.changelog) == ([], [])


def test_forgetting_reads_the_table_again_after_a_recovery() -> None:
    table = MemoryTable()
    processor = aggregator(table)
    run(processor, messages_of(_flags(["province:01"], 1)))
    state = processor.state_of(EMC)
    table.records.clear()  # what another owner of the partition left, recovered
    assert processor.state_of(EMC) == state
    processor.forget()
    assert processor.state_of(EMC) == PeriodState()
