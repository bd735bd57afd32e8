"""How the query API answers: CSV rendering, the format a request prefers, ETags and If-None-Match."""

from __future__ import annotations

import csv
import io
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.query.api.representation import CSV, JSON, entity_tag, matches, preferred
from services.query.tables import csv_text, flatten


def _read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_nested_objects_become_dotted_columns_and_lists_one_cell() -> None:
    rows = [
        {"seq": 1, "rollup": {"value": 0.5, "numerator": 1.0, "target": None, "lagging": ["a", "b"]}},
        {"seq": 2, "rollup": {"value": None, "flag": True, "extra": [{"x": 1}]}},
    ]
    text = csv_text(rows)
    assert text.splitlines()[0] == (
        "seq,rollup.value,rollup.numerator,rollup.target,rollup.lagging,rollup.flag,rollup.extra"
    )
    first, second = _read(text)
    assert first == {
        "seq": "1",
        "rollup.value": "0.5",
        "rollup.numerator": "1.0",
        "rollup.target": "",
        "rollup.lagging": "a;b",
        "rollup.flag": "",
        "rollup.extra": "",
    }
    assert (second["rollup.value"], second["rollup.flag"], second["rollup.extra"]) == (
        "",
        "true",
        '[{"x":1}]',
    )
    assert csv_text([]) == "\r\n"


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r"), max_size=20)
_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), _TEXT)


@given(
    st.lists(
        st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _LEAF, min_size=1, max_size=5),
        max_size=8,
    )
)
def test_every_cell_reads_back_as_written(rows: list[dict[str, Any]]) -> None:
    """Quotes, commas and line breaks in names survive: the CSV reads back cell for cell."""
    back = _read(csv_text(rows))
    assert len(back) == len(rows)
    for row, read in zip(rows, back, strict=True):
        assert {k: v for k, v in read.items() if k in row} == flatten(row)
        assert all(v == "" for k, v in read.items() if k not in row)


def test_csv_only_when_the_client_ranks_it_above_json() -> None:
    assert preferred(None) == JSON
    assert preferred("text/csv") == CSV
    assert preferred("text/csv, application/json;q=0.5") == CSV
    assert preferred("application/json, text/csv") == JSON  # a tie goes to JSON
    assert preferred("text/csv;q=0.2, */*;q=0.9") == JSON
    assert preferred("text/csv;q=zero") == JSON
    assert preferred("text/html") == JSON
    assert preferred("TEXT/CSV; charset=utf-8") == CSV


def test_the_etag_follows_the_revisions_and_the_format() -> None:
    tag = entity_tag(JSON, ["a1", "b2"], 10)
    assert (tag[0], tag[-1]) == ('"', '"')
    assert tag == entity_tag(JSON, ["a1", "b2"], 10)
    assert len({tag, entity_tag(CSV, ["a1", "b2"], 10), entity_tag(JSON, ["a1", "b3"], 10)}) == 3
    assert entity_tag(JSON, ["a1", "b2"], None) != tag  # the last page of the same rollups
    assert entity_tag(JSON, ["a1b2"]) != entity_tag(JSON, ["a1", "b2"])


def test_if_none_match_names_the_tag_weakly_or_with_a_star() -> None:
    tag = '"abc"'
    assert matches('"abc"', tag)
    assert matches('"x", W/"abc"', tag)
    assert matches("*", tag)
    assert not matches('"abcd"', tag)
    assert not matches(None, tag)
    assert not matches("", tag)
