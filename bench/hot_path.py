"""``python -m bench.hot_path``: the aggregator's per-batch work without Kafka, for instruction counts.

Runs full-size benchmark reports, as Kafka carries them, through what the aggregator does per batch
(decode, judge, roll up over an in-memory table, encode the changelog records and rollups), with the
worker's garbage-collector settings. Wall-clock rates on a shared machine are noise; count
instructions instead, with the warm-up batches left out::

    valgrind --tool=callgrind --instr-atstart=no .venv/bin/python -m bench.hot_path --callgrind

and divide the "Collected" instructions by the reports measured. ``--stage`` stops after decoding
(``json.loads`` alone is the floor any worker pays, ``parse`` pydantic's decoding, ``judge`` the
checks too).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from faust.serializers import codecs

from bench.callgrind import Callgrind, instrument
from bench.synthetic import SIZES, Workload
from dxpulse.domain.validation import parse_report
from dxpulse.gc_tuning import DEFAULT_THRESHOLDS, tune_gc
from dxpulse.kafka.topics import REPORTS, partition_of
from services.aggregate.processing import BatchAggregator, BatchOutcome, RawReport, Refusal
from services.aggregate.settings import AggregateSettings
from tests.unit.aggregate.support import MemoryTable

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Stage(enum.StrEnum):
    json = "json"
    parse = "parse"
    judge = "judge"
    all = "all"


def _changelog_records(outcome: BatchOutcome) -> list[tuple[bytes, Any]]:
    """The batch's changelog records encoded as ``BatchSender.changelog_record`` encodes them."""
    return [
        (
            codecs.dumps("json", write.key),
            write.value
            if write.value is None or isinstance(write.value, bytes)
            else codecs.dumps("json", write.value),
        )
        for write in outcome.changelog
    ]


def _none_refused(letters: Sequence[Refusal]) -> None:
    # A refused report costs a fraction of an accepted one: a run refusing them measures nothing.
    if letters:
        raise SystemExit(
            f"hot_path: {len(letters)} reports refused, e.g. {letters[0].reason}: {letters[0].detail}"
        )


async def _run(
    aggregator: BatchAggregator,
    batches: Sequence[Sequence[RawReport]],
    stage: Stage,
    warm_up: int,
    callgrind: bool,
) -> None:
    for number, batch in enumerate(batches):
        if callgrind and number == warm_up:
            instrument(True)
        if stage is Stage.json:
            for message in batch:
                json.loads(message.value or b"")
        elif stage is Stage.parse:
            for message in batch:
                parse_report(message.value or b"")
        elif stage is Stage.judge:
            letters: list[Refusal] = []
            for message in batch:
                aggregator._accepted(message, NOW, letters)  # noqa: SLF001 - the judging step alone
            _none_refused(letters)
        else:
            outcome = await aggregator.process(batch)
            _none_refused(outcome.dead_letters)
            _changelog_records(outcome)
    if callgrind:
        instrument(False)


def main(
    batches: Annotated[int, typer.Option(help="Batches run in all, warm-up included.")] = 5,
    warm_up: Annotated[int, typer.Option(help="Batches run before the measured ones.")] = 3,
    stage: Annotated[Stage, typer.Option(help="How far each report is taken.")] = Stage.all,
    callgrind: Callgrind = False,
) -> None:
    settings = AggregateSettings()
    size = settings.aggregate_batch_max
    home = functools.partial(partition_of, partitions=settings.topic_partitions)
    workload = Workload(SIZES["full"])
    messages = [
        RawReport(key, value, REPORTS, home(key), offset, 1.0)
        for offset, (key, value) in enumerate(workload.messages(0, batches * size))
    ]
    aggregator = BatchAggregator(
        MemoryTable(), workload.catalog, workload.registry, lambda: NOW, home_partition=home
    )
    tune_gc(DEFAULT_THRESHOLDS)
    chunks = [messages[start : start + size] for start in range(0, len(messages), size)]
    asyncio.run(_run(aggregator, chunks, stage, warm_up, callgrind))
    typer.echo(f"{stage}: {(batches - warm_up) * size:,} reports measured after {warm_up * size:,}")


if __name__ == "__main__":
    typer.run(main)
