"""dxpulse's rollup job as a Quix Streams application, for the peer rows of the benchmarks."""

# Runs in its own virtual environment (requirements.txt beside it; bench.peers builds it), so it
# imports nothing of dxpulse. Per report: keep the latest snapshot per reporter of its (indicator,
# period) by observation time (the event id breaks ties), keep per scope running sums of those
# snapshots, and publish the rollup of every scope the reporter belongs to. The state is Quix
# Streams' default store (RocksDB, with a changelog topic), keyed by the report's key
# indicator|period.
#
# python app.py BOOTSTRAP GROUP INPUT OUTPUT SPEC STATE_DIR: SPEC is the job's catalog and registry
# as JSON (each indicator's kind and items, each (indicator, period)'s scopes with their expected
# reporters).

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Job:
    """The rollup job over one spec; ``step`` is Quix Streams' stateful apply function."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.indicators: dict[str, dict[str, Any]] = spec["indicators"]
        self.scopes: dict[str, dict[str, frozenset[str]]] = {
            pair: {scope: frozenset(reporters) for scope, reporters in scopes.items()}
            for pair, scopes in spec["scopes"].items()
        }

    def step(self, report: dict[str, Any], state: Any) -> list[dict[str, Any]]:
        """The rollups of the scopes ``report`` changes (none for a late or duplicate report)."""
        indicator_id, period, reporter = report["indicator"], report["period"], report["reporter"]
        pair = f"{indicator_id}|{period}"
        scopes, indicator = self.scopes.get(pair), self.indicators.get(indicator_id)
        if scopes is None or indicator is None:
            return []  # not in the catalog: the aggregator's validation would have refused it
        observed = datetime.fromisoformat(report["observed_at"])
        new = [(observed - EPOCH) // _MICROSECOND, report["event_id"], report["value"]]
        old = state.get(f"r:{reporter}")
        if old is not None and (new[0], new[1]) <= (old[0], old[1]):
            return []
        state.set(f"r:{reporter}", new)
        rollups = []
        for scope, expected in scopes.items():
            if reporter not in expected:
                continue
            tally = state.get(f"t:{scope}") or {
                "reported": 0,
                "flags": 0,
                "numerator": 0,
                "denominator": 0,
                "values": 0,
                "newest": None,
                "items": {},
            }
            if old is None:
                tally["reported"] += 1
            else:
                _count(tally, old[2], -1)
            _count(tally, new[2], 1)
            tally["newest"] = new[0] if tally["newest"] is None else max(tally["newest"], new[0])
            state.set(f"t:{scope}", tally)
            rollups.append(_rollup(indicator_id, indicator, period, scope, len(expected), tally))
        return rollups


_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - EPOCH


def _count(tally: dict[str, Any], value: dict[str, Any], sign: int) -> None:
    kind = value["kind"]
    if kind == "flag":
        tally["flags"] += sign if value["value"] else 0
    elif kind == "ratio":
        tally["numerator"] += sign * value["numerator"]
        tally["denominator"] += sign * value["denominator"]
    elif kind == "count":
        tally["values"] += sign
        tally["numerator"] += sign * value["value"]
    else:
        items: dict[str, int] = tally["items"]
        for item in set(value["done"]):
            held = items.get(item, 0) + sign
            if held:
                items[item] = held
            else:
                del items[item]


def _rollup(
    indicator_id: str,
    indicator: dict[str, Any],
    period: str,
    scope: str,
    expected: int,
    tally: dict[str, Any],
) -> dict[str, Any]:
    kind = indicator["kind"]
    denominator: float | None
    if kind == "flag":
        numerator, denominator = float(tally["flags"]), float(expected)
    elif kind == "ratio":
        numerator, denominator = float(tally["numerator"]), float(tally["denominator"])
    elif kind == "count":
        numerator, denominator = float(tally["numerator"]) if tally["values"] else 0.0, None
    else:
        items = indicator["items"]
        numerator = float(sum(1 for item in items if tally["items"].get(item, 0) > 0))
        denominator = float(len(items))
    if kind == "count":
        value: float | None = numerator
    else:
        value = numerator / denominator if denominator else None
    return {
        "key": f"{indicator_id}|{period}|{scope}",
        "indicator": indicator_id,
        "period": period,
        "scope": scope,
        "kind": kind,
        "value": value,
        "numerator": numerator,
        "denominator": denominator,
        "reporters_reported": tally["reported"],
        "reporters_expected": expected,
        "latest_observed_us": tally["newest"],
        "lagging_count": expected - tally["flags"] if kind == "flag" else 0,
        "not_reported_count": expected - tally["reported"],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 6:
        print("usage: app.py BOOTSTRAP GROUP INPUT OUTPUT SPEC STATE_DIR", file=sys.stderr)
        return 2
    # Imported here: the job above is also checked in dxpulse's own tests, whose venv lacks it.
    from quixstreams import Application  # type: ignore[import-not-found, unused-ignore]

    bootstrap, group, source, sink, spec, state_dir = argv
    job = Job(json.loads(Path(spec).read_text()))
    # Quix Streams' defaults otherwise; "earliest" only matters without committed offsets, and the
    # bench commits the group's starting offsets before it starts the application.
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    reports = app.topic(source, key_deserializer="str", value_deserializer="json")
    rollups = app.topic(sink, key_serializer="str", value_serializer="json")
    frame = app.dataframe(reports)
    frame = frame.apply(job.step, stateful=True, expand=True)
    frame.to_topic(rollups, key=lambda rollup: rollup["key"])
    app.run()  # until SIGTERM or SIGINT, which it handles by committing and closing the state
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
