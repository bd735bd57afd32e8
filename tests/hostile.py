"""Hypothesis strategies for what a hostile or careless reporter sends: extreme numbers, any bytes."""

from __future__ import annotations

import json
import random
import sys
from typing import Any

from hypothesis import strategies as st

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.registry import default_registry
from schemas.events import MAX_AMOUNT

CATALOG = default_catalog()
REPORTERS = sorted(default_registry().reporters)

EXTREME_NUMBERS = st.sampled_from(
    [
        0,
        0.0,
        -0.0,
        5e-324,
        2.2250738585072014e-308,
        0.1,
        0.5,
        1,
        2**53 - 1,
        2**53,
        2**53 + 1,
        MAX_AMOUNT - 0.5,
        MAX_AMOUNT,
        MAX_AMOUNT + 1,
        float(MAX_AMOUNT) * (1 + 2**-52),
        2**63,
        2**64,
        10**30,
        sys.float_info.max,
        1e308,
        -1,
        -5e-324,
    ]
)
NUMBERS = st.one_of(
    EXTREME_NUMBERS,
    st.floats(min_value=0, max_value=MAX_AMOUNT),
    st.integers(min_value=0, max_value=MAX_AMOUNT),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(),
)
ODD_TYPES = st.one_of(
    st.booleans(), st.none(), st.text(max_size=5), st.just("12"), st.just([]), st.just({}), st.just("1e308")
)
INSTANTS = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+23:59",
            "0001-01-01T00:00:00-23:59",
            "9999-12-31T23:59:59-23:59",
            "9999-12-31T23:59:59+23:59",
            "1970-01-01T00:00:00Z",
            "2024-06-30T10:00:00Z",
            "2024-06-30T10:00:00.999999+07:00",
            "2026-12-06",
            "2026-12-06T12:00:00",
        ]
    ),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)
ANY_PERIOD = st.one_of(
    st.sampled_from(["0000", "0001", "9999", "2024", "2024-H1", "2024-H2", "2024-Q4", "2024-12", "2025-H2"]),
    st.from_regex(r"\A[0-9]{4}(-(H[12]|Q[1-4]|0[1-9]|1[0-2]))?\Z"),
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def report_values(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A value of ``kind``: mostly well typed with any number, sometimes with odd types."""
    odd = draw(st.integers(0, 9)) == 0
    amount = ODD_TYPES if odd else NUMBERS
    if kind == "flag":
        return {"kind": "flag", "value": draw(ODD_TYPES if odd else st.booleans())}
    if kind == "ratio":
        return {"kind": "ratio", "numerator": draw(amount), "denominator": draw(amount)}
    if kind == "count":
        return {"kind": "count", "value": draw(amount)}
    items = CATALOG["essential_public_services"].items
    done = draw(st.lists(st.one_of(st.sampled_from(items), st.text(max_size=70)), max_size=60))
    return {"kind": "catalog", "done": done}


@st.composite
def raw_reports(
    draw: st.DrawFn,
    indicators: tuple[str, ...] | None = None,
    periods: dict[str, st.SearchStrategy[str]] | None = None,
    reporters: st.SearchStrategy[str] | None = None,
) -> dict[str, Any]:
    """A report as JSON data, of any indicator (or one of ``indicators``) and period (or, per period
    type, one of ``periods``), often of the indicator's kind, with any numbers."""
    chosen = (
        CATALOG[draw(st.sampled_from(indicators))]
        if indicators
        else draw(st.sampled_from(CATALOG.indicators))
    )
    kind = draw(st.sampled_from([chosen.kind, chosen.kind, chosen.kind, "flag", "ratio", "count", "catalog"]))
    period = draw(periods[chosen.period_type]) if periods else draw(ANY_PERIOD)
    return {
        "event_id": str(draw(st.uuids())),
        "reporter": draw(reporters if reporters is not None else st.sampled_from(REPORTERS)),
        "indicator": chosen.id,
        "period": period,
        "observed_at": draw(INSTANTS),
        "value": draw(report_values(kind)),
    }


def sized_bytes(size: int, seed: int) -> bytes:
    """``size`` pseudo-random bytes (hypothesis draws the size and seed: drawing a megabyte is slow)."""
    return random.Random(seed).randbytes(size)


def as_json(value: Any) -> bytes:
    """JSON text of ``value`` as Python writes it: large integers stay exact, floats round-trip."""
    return json.dumps(value).encode()
