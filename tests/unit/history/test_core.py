"""The history writer's pure core: which rollups become numbered revisions, and reporter_latest rows."""

from __future__ import annotations

import re

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.registry import Registry
from schemas import Rollup
from services.history.core import (
    INSERT_HISTORY,
    UPSERT_CURRENT,
    UPSERT_LATEST,
    Published,
    Revision,
    Tip,
    accepted_report,
    history_row,
    latest_row,
    new_revisions,
    newest_per_key,
    parse_published,
)
from tests.unit.conftest import NOW, feed, flag, make_report


def _flapping_province_rollups() -> list[Rollup]:
    """The provinces rollups the aggregator core publishes as province:02 goes false, true, false.

    The first and last figures are equal (same values, same newest observation), so they share a
    revision: the case 0001's (indicator, period, scope, revision) key lost.
    """
    reports = [
        make_report("province:01", flag(True), minutes=30),
        make_report("province:02", flag(False)),
        make_report("province:02", flag(True), minutes=1),
        make_report("province:02", flag(False), minutes=2),
    ]
    _, published = feed(reports, "emc_connection", "2024-H1")
    return [r for batch in published for r in batch if r.scope == "provinces"]


def _messages(rollups: list[Rollup], partition: int = 3, first_offset: int = 100) -> list[Published]:
    return [Published(partition, first_offset + i, r) for i, r in enumerate(rollups)]


def _seqs(revisions: list[Revision]) -> list[tuple[str, int, int]]:
    return [(r.source.rollup.key, r.seq, r.source.offset) for r in revisions]


def test_a_figure_that_returns_to_an_earlier_revision_gets_a_row_of_its_own() -> None:
    rollups = _flapping_province_rollups()
    assert len(rollups) == 4
    assert rollups[1].revision == rollups[3].revision != rollups[2].revision

    added, tips = new_revisions({}, _messages(rollups))

    assert [r.seq for r in added] == [1, 2, 3, 4]
    assert [r.source.rollup.revision for r in added] == [r.revision for r in rollups]
    assert tips == {rollups[0].key: Tip(4, rollups[3].revision, 3, 103)}


def test_replaying_what_was_written_adds_nothing() -> None:
    messages = _messages(_flapping_province_rollups())
    _, tips = new_revisions({}, messages)

    added, moved = new_revisions(tips, messages)

    assert (added, moved) == ([], {})


def test_any_split_into_batches_writes_the_same_history() -> None:
    messages = _messages(_flapping_province_rollups())
    at_once, _ = new_revisions({}, messages)
    for cut in range(len(messages) + 1):
        first, tips = new_revisions({}, messages[:cut])
        # A redelivery overlapping the first batch, as after a crash before the offset commit.
        rest, _ = new_revisions(tips, messages[max(0, cut - 2) :])
        assert _seqs(first + rest) == _seqs(at_once), cut


def test_the_same_figure_sent_again_is_not_a_new_revision() -> None:
    first = _flapping_province_rollups()[0]
    # After a crash the aggregator recomputes and sends the same figure with a new computed_at.
    again = first.model_copy(update={"computed_at": first.computed_at.replace(year=2026)})

    added, tips = new_revisions({}, _messages([first, again]))

    assert _seqs(added) == [(first.key, 1, 100)]
    assert tips[first.key].offset == 100


def test_rollups_are_numbered_per_key() -> None:
    provinces = _flapping_province_rollups()[:2]
    other = provinces[0].model_copy(update={"scope": "national"})

    added, _ = new_revisions({}, _messages([provinces[0], other, provinces[1]]))

    assert [(r.source.rollup.scope, r.seq) for r in added] == [
        ("provinces", 1),
        ("national", 1),
        ("provinces", 2),
    ]


def test_rows_from_before_source_offsets_continue_their_sequence() -> None:
    rollups = _flapping_province_rollups()
    legacy = {rollups[0].key: Tip(seq=7, revision=rollups[0].revision, partition=None, offset=None)}

    added, _ = new_revisions(legacy, _messages(rollups[:2], first_offset=0))

    assert _seqs(added) == [(rollups[0].key, 8, 1)]


def test_an_offset_on_another_partition_is_not_taken_for_a_replay() -> None:
    rollups = _flapping_province_rollups()
    tip = {rollups[0].key: Tip(seq=1, revision=rollups[0].revision, partition=5, offset=900)}

    added, _ = new_revisions(tip, [Published(3, 10, rollups[1])])

    assert _seqs(added) == [(rollups[0].key, 2, 10)]


def _placeholders(sql: str) -> int:
    numbers = [int(n) for n in re.findall(r"\$(\d+)", sql)]
    assert sorted(set(numbers)) == list(range(1, max(numbers) + 1)), "placeholders skip a number"
    return max(numbers)


def test_rows_match_their_statements() -> None:
    rollups = _flapping_province_rollups()
    revision = Revision(seq=2, source=Published(1, 42, rollups[1]))
    history = history_row(revision)
    assert len(history) == _placeholders(INSERT_HISTORY)
    assert history[:5] == ("emc_connection", "2024-H1", "provinces", 2, rollups[1].revision)
    assert history[-2:] == (1, 42)
    assert Rollup.model_validate_json(history[12]) == rollups[1]
    assert _placeholders(UPSERT_CURRENT) == len(history)
    report = make_report("province:79", flag(True))
    assert len(latest_row(report)) == _placeholders(UPSERT_LATEST)


def test_newest_per_key_keeps_the_last_of_each() -> None:
    rollups = _flapping_province_rollups()
    added, _ = new_revisions({}, _messages(rollups))
    assert newest_per_key(added) == [added[-1]]


def test_a_message_that_is_not_a_rollup_is_skipped() -> None:
    assert parse_published(0, 1, b'{"not": "a rollup"}') is None
    assert parse_published(0, 1, None) is None
    rollup = _flapping_province_rollups()[0]
    assert parse_published(2, 5, rollup.model_dump_json().encode()) == Published(2, 5, rollup)


def test_reporter_latest_takes_only_what_the_aggregator_accepts(catalog: Catalog, registry: Registry) -> None:
    report = make_report("province:79", flag(True))
    body = report.model_dump_json().encode()
    key = b"emc_connection|2024-H1"

    assert accepted_report(key, body, catalog, registry, NOW) == report
    assert accepted_report(b"emc_connection|2024-H2", body, catalog, registry, NOW) is None
    assert accepted_report(None, body, catalog, registry, NOW) is None
    assert accepted_report(key, b"{", catalog, registry, NOW) is None
    unknown = report.model_copy(update={"reporter": "province:99"})
    assert accepted_report(key, unknown.model_dump_json().encode(), catalog, registry, NOW) is None
