"""The ingest's pure parts: tokens and scope, the token bucket, schema problems, caches, report files."""

from __future__ import annotations

import gc
import json
import uuid

import pytest

from dxpulse.cli.report_files import derived_event_id, format_of, read_csv, read_jsonl
from dxpulse.domain.registry import Registry
from dxpulse.domain.tokens import (
    bearer_token,
    hash_token,
    may_report,
    mint_token,
    reporter_group,
    subject_error,
    token_id_of,
)
from dxpulse.domain.validation import Problem, parse_report
from services.ingest.auth import TokenCache
from services.ingest.ratelimit import Bucket, take
from services.ingest.settings import IngestSettings
from services.ingest.store import AcceptedIds

VALID = {
    "event_id": "7d1c6a52-2b7e-4c57-9a43-3f1f0c1e9b10",
    "reporter": "province:79",
    "indicator": "online_records_rate",
    "period": "2024-H1",
    "observed_at": "2024-06-30T10:00:00Z",
    "value": {"kind": "ratio", "numerator": 1, "denominator": 3},
}


def test_minted_tokens_are_random_and_only_their_hash_is_kept() -> None:
    a, b = mint_token(), mint_token()
    assert a.secret != b.secret
    assert a.secret.startswith("dxp_")
    assert a.digest == hash_token(a.secret)
    assert a.secret not in a.digest
    assert token_id_of(a.secret) == a.token_id
    assert token_id_of("not a token") is None


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("", None),
        (None, None),
        ("Bearer " + "x" * 300, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("subject", "reporter", "allowed"),
    [
        ("province:79", "province:79", True),
        ("province:79", "province:01", False),
        ("province:7", "province:79", False),
        ("national:*", "national:MPS", True),
        ("national:*", "province:79", False),
        ("national:MPS", "national:MIC", False),
    ],
)
def test_a_token_reports_only_as_its_subject(subject: str, reporter: str, allowed: bool) -> None:
    assert may_report(subject, reporter) is allowed


def test_tokens_are_issued_only_for_known_reporters(registry: Registry) -> None:
    assert subject_error("province:79", registry) is None
    assert subject_error("national:*", registry) is None
    error = subject_error("province:999", registry)
    assert error is not None
    assert "not a reporter" in error


@pytest.mark.parametrize(
    ("reporter", "group"),
    [
        ("province:79", "provinces"),
        ("ministry:MIC", "ministries"),
        ("national:MPS", "national"),
        (None, "unknown"),
    ],
)
def test_reporter_group(reporter: str | None, group: str) -> None:
    assert reporter_group(reporter) == group


def test_token_bucket_spends_refills_and_says_how_long_to_wait() -> None:
    bucket, wait = take(None, 5, now=0.0, rate=2.0, burst=10.0)
    assert (bucket, wait) == (Bucket(5.0, 0.0), 0.0)
    bucket, wait = take(bucket, 8, now=0.5, rate=2.0, burst=10.0)
    assert bucket == Bucket(6.0, 0.5)
    assert wait == pytest.approx(1.0)
    bucket, wait = take(bucket, 8, now=1.5, rate=2.0, burst=10.0)
    assert (bucket, wait) == (Bucket(0.0, 1.5), 0.0)
    bucket, _ = take(bucket, 0, now=100.0, rate=2.0, burst=10.0)
    assert bucket.tokens == 10.0


def test_burst_must_fit_the_largest_batch() -> None:
    with pytest.raises(ValueError, match="DXPULSE_RATE_LIMIT_BURST"):
        IngestSettings(rate_limit_burst=10, max_batch_items=500)


@pytest.mark.parametrize(
    ("body", "slug", "field"),
    [
        (b"{not json", "malformed-json", None),
        (json.dumps({**VALID, "schema_version": 2}).encode(), "unsupported-schema-version", "schema_version"),
        (
            json.dumps({**VALID, "value": {"kind": "ratio", "numerator": -1, "denominator": 3}}).encode(),
            "negative-value",
            "value.numerator",
        ),
        (
            json.dumps({**VALID, "value": {"kind": "count", "value": -2}}).encode(),
            "negative-value",
            "value.value",
        ),
        (json.dumps({**VALID, "event_id": "x"}).encode(), "invalid-report", "event_id"),
        (b"[]", "invalid-report", None),
    ],
)
def test_schema_problems_are_precise(body: bytes, slug: str, field: str | None) -> None:
    problem = parse_report(body)
    assert isinstance(problem, Problem)
    assert (problem.type, problem.field) == (slug, field)
    assert problem.detail


def test_parse_report_from_decoded_json() -> None:
    report = parse_report(VALID, is_json=False)
    assert not isinstance(report, Problem)
    assert report.reporter == "province:79"


async def test_token_cache_remembers_for_its_ttl_then_asks_again() -> None:
    calls: list[str] = []
    subjects = {"good": "province:79"}
    now = [0.0]

    async def lookup(token: str) -> str | None:
        calls.append(token)
        return subjects.get(token)

    cache = TokenCache(lookup, ttl_s=10, max_entries=2, clock=lambda: now[0])
    assert await cache.subject("good") == "province:79"
    assert await cache.subject("bad") is None
    assert await cache.subject("good") == "province:79"
    assert calls == ["good", "bad"]
    del subjects["good"]  # revoked
    now[0] = 11.0
    assert await cache.subject("good") is None
    assert calls == ["good", "bad", "good"]


def test_accepted_ids_are_bounded() -> None:
    ids = AcceptedIds(2)
    keys = [("province:79", uuid.uuid4()) for _ in range(3)]
    for key in keys:
        ids.add(key)
    assert keys[0] not in ids
    assert keys[1] in ids
    assert keys[2] in ids


def test_accepted_ids_are_left_out_of_the_garbage_collector() -> None:
    # Tens of thousands of keys walked at every full collection were a fifth of the ingest's CPU.
    ids = AcceptedIds(1_000)
    for _ in range(100):
        ids.add(("province:79", uuid.uuid4()))
    gc.collect()
    held = ids.held()
    assert len(held) == 100
    assert not any(gc.is_tracked(key) for key in held)


def test_csv_rows_become_reports_with_stable_event_ids() -> None:
    text = (
        "reporter,indicator,period,observed_at,kind,value,numerator,denominator,done\n"
        "province:79,emc_connection,2024-H1,2024-06-30T10:00:00Z,flag,yes,,,\n"
        "province:79,online_records_rate,2024-H1,2024-06-30T10:00:00Z,ratio,,12,30,\n"
        "national:MPS,essential_public_services,2024-H1,2024-06-30T10:00:00Z,catalog,,,,eps-01; eps-02\n"
        "province:79,digital_tech_enterprises,2024-H1,2024-06-30T10:00:00Z,count,many,,,\n"
    )
    items = read_csv(text)
    assert [i.line for i in items] == [2, 3, 4, 5]
    reports = [i.report for i in items]
    assert reports[0] is not None
    assert reports[0]["value"] == {"kind": "flag", "value": True}
    assert reports[0]["event_id"] == derived_event_id(
        "province:79", "emc_connection", "2024-H1", "2024-06-30T10:00:00Z"
    )
    assert reports[1] is not None
    assert reports[1]["value"] == {"kind": "ratio", "numerator": 12, "denominator": 30}
    assert reports[2] is not None
    assert reports[2]["value"] == {"kind": "catalog", "done": ["eps-01", "eps-02"]}
    assert reports[3] is not None
    assert reports[3]["value"] == {"kind": "count", "value": "many"}  # left for the API to refuse
    assert not isinstance(parse_report(reports[1], is_json=False), Problem)


def test_csv_without_required_columns_is_one_clear_error() -> None:
    [item] = read_csv("reporter,value\nprovince:79,1\n")
    assert item.error is not None
    assert "indicator" in item.error


def test_json_lines_keep_line_numbers_and_flag_bad_lines() -> None:
    items = read_jsonl(json.dumps(VALID) + "\n\n{oops\n[1]\n")
    assert [(i.line, i.report is not None) for i in items] == [(1, True), (3, False), (4, False)]
    assert items[1].error is not None
    assert items[1].error.startswith("malformed-json")
    assert format_of("x.CSV") == "csv"
    assert format_of("x.jsonl") == "jsonl"
