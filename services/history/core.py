"""PostgreSQL history: every published rollup as a numbered revision, and the latest value per reporter.

Pure functions decide what to write (``new_revisions``, ``history_row``, ``latest_row``); the writers
only run them inside a transaction. Both writers are idempotent, so a replay of either topic, a
crash or a redelivery leaves the tables as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.registry import Registry
from dxpulse.domain.validation import Problem, validate_report
from dxpulse.kafka.security import PLAINTEXT, KafkaSecurity
from dxpulse.kafka.subscriber import read_records
from dxpulse.kafka.topics import ROLLUPS
from dxpulse.postgres.migrations import open_pool
from schemas import Report, Rollup
from schemas.events import report_key

log = logging.getLogger(__name__)

BATCH = 500
"""Messages written per transaction at most: what arrived while the batch before was written."""


@dataclass(frozen=True)
class Published:
    """A rollup as read from the rollup topic, with the partition and offset it was read at."""

    partition: int
    offset: int
    rollup: Rollup


@dataclass(frozen=True)
class Tip:
    """The newest revision written for one rollup: where its sequence stands."""

    seq: int
    revision: str
    partition: int | None
    offset: int | None
    """None for rows written before migration 0004, which kept no source offset."""


@dataclass(frozen=True)
class Revision:
    """One row of rollup_history: the ``seq``-th distinct figure of a rollup."""

    seq: int
    source: Published


def parse_published(partition: int, offset: int, value: bytes | None) -> Published | None:
    """The rollup a rollup-topic message carries, or None (logged) when it is not one.

    Only the aggregator writes the topic, so a bad message is a bug to investigate, not a figure:
    skipping it keeps history flowing instead of stopping the writer on it forever.
    """
    try:
        return Published(partition, offset, Rollup.model_validate_json(value or b""))
    except ValidationError as error:
        log.error("rollup topic %s@%s is not a rollup, not in history: %s", partition, offset, error)
        return None


def _seen(tip: Tip, message: Published) -> bool:
    """The message was read at or before the offset of the rollup's newest row."""
    return tip.partition == message.partition and tip.offset is not None and message.offset <= tip.offset


def new_revisions(
    tips: Mapping[str, Tip], messages: Iterable[Published]
) -> tuple[list[Revision], dict[str, Tip]]:
    """The history rows ``messages`` add after ``tips`` (by rollup key), and the tips they move.

    A message adds a row unless its revision is the rollup's newest already (the aggregator sent
    the same figure again after a crash) or it was read at or before the newest row's offset (a
    replay). A figure that returns to an earlier revision adds a row: history keeps every step.
    Messages of one key arrive in offset order on one partition, as Kafka delivers them.
    """
    current = dict(tips)
    added: list[Revision] = []
    for message in messages:
        key = message.rollup.key
        tip = current.get(key)
        if tip is not None and (tip.revision == message.rollup.revision or _seen(tip, message)):
            continue
        revision = Revision(seq=(tip.seq if tip else 0) + 1, source=message)
        added.append(revision)
        current[key] = Tip(revision.seq, message.rollup.revision, message.partition, message.offset)
    moved = {key: tip for key, tip in current.items() if tips.get(key) != tip}
    return added, moved


def history_row(revision: Revision) -> tuple[Any, ...]:
    """The rollup_history (and rollup_current) row of a revision, in _ROW's column order."""
    rollup = revision.source.rollup
    return (
        rollup.indicator,
        rollup.period,
        rollup.scope,
        revision.seq,
        rollup.revision,
        rollup.value,
        rollup.numerator,
        rollup.denominator,
        rollup.attainment,
        rollup.reporters_reported,
        rollup.reporters_expected,
        rollup.computed_at,
        rollup.model_dump_json(),
        revision.source.partition,
        revision.source.offset,
    )


def newest_per_key(revisions: Sequence[Revision]) -> list[Revision]:
    """The last revision of each rollup among ``revisions``."""
    return list({r.source.rollup.key: r for r in revisions}.values())


SELECT_TIPS = """
SELECT indicator || '|' || period || '|' || scope AS key, seq, revision, source_partition, source_offset
FROM rollup_current
WHERE (indicator, period, scope) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
FOR UPDATE
"""

_ROW = """(indicator, period, scope, seq, revision, value, numerator, denominator, attainment,
    reporters_reported, reporters_expected, computed_at, body, source_partition, source_offset)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15)"""
"""Columns and placeholders of history_row, shared by rollup_history and rollup_current."""

INSERT_HISTORY = "INSERT INTO rollup_history " + _ROW + " ON CONFLICT DO NOTHING"

UPSERT_CURRENT = (
    "INSERT INTO rollup_current "
    + _ROW
    + """
ON CONFLICT (indicator, period, scope) DO UPDATE
SET seq = EXCLUDED.seq, revision = EXCLUDED.revision, value = EXCLUDED.value,
    numerator = EXCLUDED.numerator, denominator = EXCLUDED.denominator, attainment = EXCLUDED.attainment,
    reporters_reported = EXCLUDED.reporters_reported, reporters_expected = EXCLUDED.reporters_expected,
    computed_at = EXCLUDED.computed_at, body = EXCLUDED.body,
    source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset
WHERE rollup_current.seq < EXCLUDED.seq
"""
)


async def write_rollups(conn: asyncpg.Connection, messages: Sequence[Published]) -> int:
    """Append the new revisions among ``messages`` to history in one transaction; returns how many.

    The rollups' rows in rollup_current are locked first, so two writers (a rebalance overlap, or
    a replay beside the live worker) take turns per rollup instead of numbering the same seq twice.
    """
    if not messages:
        return 0
    keys = sorted({(m.rollup.indicator, m.rollup.period, m.rollup.scope) for m in messages})
    async with conn.transaction():
        rows = await conn.fetch(SELECT_TIPS, *(list(column) for column in zip(*keys, strict=True)))
        tips = {
            row["key"]: Tip(row["seq"], row["revision"], row["source_partition"], row["source_offset"])
            for row in rows
        }
        added, _ = new_revisions(tips, messages)
        if added:
            await conn.executemany(INSERT_HISTORY, [history_row(r) for r in added])
            await conn.executemany(UPSERT_CURRENT, [history_row(r) for r in newest_per_key(added)])
    return len(added)


def accepted_report(
    key: bytes | None, value: bytes, catalog: Catalog, registry: Registry, now: datetime
) -> Report | None:
    """The report a reports-topic message carries if the aggregator accepts it, else None.

    The same checks as the aggregator's (schema, catalog and registry, key), so reporter_latest
    holds exactly the values the rollups rest on; refusals are the aggregator's to dead-letter.
    """
    try:
        report = Report.model_validate_json(value)
    except ValidationError:
        return None
    if isinstance(validate_report(report, catalog, registry, now), Problem):
        return None
    if key is None or key.decode(errors="replace") != report_key(report.indicator, report.period):
        return None
    return report


UPSERT_LATEST = """
INSERT INTO reporter_latest (reporter, indicator, period, observed_at, event_id, kind, value)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (reporter, indicator, period) DO UPDATE
SET observed_at = EXCLUDED.observed_at, event_id = EXCLUDED.event_id, kind = EXCLUDED.kind,
    value = EXCLUDED.value, recorded_at = now()
WHERE (EXCLUDED.observed_at, EXCLUDED.event_id) > (reporter_latest.observed_at, reporter_latest.event_id)
"""


def latest_row(report: Report) -> tuple[Any, ...]:
    """The reporter_latest row of a report; UPSERT_LATEST keeps it only if it is the newest."""
    return (
        report.reporter,
        report.indicator,
        report.period,
        report.observed_at,
        report.event_id,
        report.value.kind,
        report.value.model_dump_json(),
    )


async def write_latest(conn: asyncpg.Connection, reports: Sequence[Report]) -> int:
    """Upsert each report's value where it is newer than the stored one, in one transaction;
    returns how many reports were written (each kept only if newer)."""
    if reports:
        async with conn.transaction():
            await conn.executemany(UPSERT_LATEST, [latest_row(r) for r in reports])
    return len(reports)


async def replay_rollups(
    bootstrap: str,
    database_url: str,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
    timeout_s: float = 300.0,
    security: KafkaSecurity = PLAINTEXT,
) -> tuple[int, int]:
    """Write the whole rollup topic, from its first offset, into history; returns (read, added).

    What the history writer does, from the beginning and outside any consumer group: rebuilds history
    in a new database, or fills a gap after an outage. Idempotent: a replay over complete history
    adds nothing. ``progress`` gets (messages written, messages read) after each batch.
    """
    records = await read_records(bootstrap, ROLLUPS, timeout_s=timeout_s, security=security)
    messages = [m for r in records if (m := parse_published(r.partition, r.offset, r.value)) is not None]
    added = 0
    # An operator's command, often on a new database: it migrates as `dxpulse db migrate` would.
    pool = await open_pool(database_url, migrate=True)
    try:
        async with pool.acquire() as conn:
            for start in range(0, len(messages), BATCH):
                added += await write_rollups(conn, messages[start : start + BATCH])
                progress(min(start + BATCH, len(messages)), len(messages))
    finally:
        await pool.close()
    return len(records), added
