"""Dead letters keep the original when it fits Kafka's record size, and its size and digest always."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from dxpulse.kafka.dead_letters import DEAD_LETTER_MAX_BYTES, DeadLetters, Refused, letter_of
from schemas import DeadLetter

AT = datetime(2026, 12, 6, tzinfo=UTC)


def _refused(value: bytes, key: bytes | None = b"emc_connection|2024-H1") -> Refused:
    return Refused(key, value, "dxpulse.reports.v1", 3, 41)


def test_a_small_original_is_kept_whole() -> None:
    letter = letter_of(_refused(b"not json"), "invalid-report", "bad", AT)
    assert base64.b64decode(letter.original) == b"not json"
    assert (letter.original_size, letter.original_truncated) == (8, False)
    assert letter.original_sha256 == hashlib.sha256(b"not json").hexdigest()


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=1_048_576), st.integers(min_value=0, max_value=200_000))
def test_a_letter_never_exceeds_the_limit_and_keeps_what_fits(size: int, detail: int) -> None:
    original = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    letter = letter_of(_refused(original, b"k" * 5000), "invalid-report", "d" * detail, AT)
    encoded = letter.model_dump_json().encode()
    assert len(encoded) <= DEAD_LETTER_MAX_BYTES
    kept = base64.b64decode(letter.original)
    assert original.startswith(kept)
    assert letter.original_truncated == (kept != original)
    assert (letter.original_size, letter.original_sha256) == (size, hashlib.sha256(original).hexdigest())
    assert letter.original_key == "k" * 1024
    assert DeadLetter.model_validate_json(encoded) == letter


def test_a_900_kb_message_keeps_most_of_its_bytes() -> None:
    letter = letter_of(_refused(b"a" * 900_000), "invalid-report", "too big", AT)
    assert letter.original_truncated
    assert len(base64.b64decode(letter.original)) > 600_000


async def test_a_letter_refused_for_its_size_is_sent_again_without_the_original() -> None:
    sent: list[bytes] = []

    async def send(key: bytes | None, value: bytes) -> None:
        if len(value) > 1000:
            raise MessageSizeTooLargeError()
        sent.append(value)

    registry = CollectorRegistry()
    letters = DeadLetters(send, registry, lambda: AT, reasons=("invalid-report",))
    assert registry.get_sample_value("dxpulse_dead_letters_total", {"reason": "invalid-report"}) == 0
    await letters.send(_refused(b"z" * 5000), "invalid-report", "bad")
    (only,) = sent
    letter = DeadLetter.model_validate_json(only)
    assert (letter.original, letter.original_truncated, letter.original_size) == ("", True, 5000)
    assert registry.get_sample_value("dxpulse_dead_letters_total", {"reason": "invalid-report"}) == 1


async def test_other_send_errors_are_raised_and_not_counted() -> None:
    async def send(key: bytes | None, value: bytes) -> None:
        raise KafkaConnectionError()

    registry = CollectorRegistry()
    letters = DeadLetters(send, registry, lambda: AT)
    with pytest.raises(KafkaConnectionError):
        await letters.send(_refused(b"x"), "invalid-report", "bad")
    assert registry.get_sample_value("dxpulse_dead_letters_total", {"reason": "invalid-report"}) is None
