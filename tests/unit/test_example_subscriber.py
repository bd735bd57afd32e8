"""The example subscriber keeps the last figure per key, skips a figure it holds, drops a deleted one."""

from __future__ import annotations

import json
from typing import Any

from examples.subscribe_rollups import apply_record, apply_rollup, describe


def _rollup(revision: str, numerator: float) -> dict[str, Any]:
    return {
        "indicator": "emc_connection",
        "period": "2024-H1",
        "scope": "national",
        "value": numerator / 84,
        "numerator": numerator,
        "denominator": 84.0,
        "reporters_reported": 84,
        "reporters_expected": 84,
        "revision": revision,
    }


def test_last_value_per_key_wins_and_a_resent_revision_is_skipped() -> None:
    current: dict[str, dict[str, Any]] = {}
    key = "emc_connection|2024-H1|national"
    assert apply_rollup(current, key, _rollup("a", 81))
    assert apply_rollup(current, key, _rollup("b", 82))
    assert not apply_rollup(current, key, _rollup("b", 82))
    assert current[key]["numerator"] == 82


def test_description_reads_like_the_national_review() -> None:
    text = describe(_rollup("b", 82))
    assert text == "emc_connection 2024-H1 national: 0.976 (82/84), 84/84 reported"


def test_a_record_with_no_value_deletes_its_figure() -> None:
    current: dict[str, dict[str, Any]] = {}
    key = b"emc_connection|2024-H1|national"
    assert apply_record(current, key, json.dumps(_rollup("a", 81)).encode()) == (
        "emc_connection 2024-H1 national: 0.964 (81/84), 84/84 reported"
    )
    assert apply_record(current, key, json.dumps(_rollup("a", 81)).encode()) is None
    assert apply_record(current, key, None) == "emc_connection 2024-H1 national: deleted"
    assert current == {}
    assert apply_record(current, key, None) is None
