"""Dead letters: what a worker keeps of a message it cannot handle, always small enough for Kafka."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError
from prometheus_client import CollectorRegistry, Counter

from schemas import DeadLetter

log = logging.getLogger(__name__)

DEAD_LETTER_MAX_BYTES = 900_000
"""The largest dead-letter record value. Kafka's defaults (a producer request of 1 MiB, a broker
message of 1 MiB + 12 bytes) leave room beside it for the key and the record batch's headers. The
original of a message near the broker's limit, base64-encoded (4/3 of its size), would not fit:
such a letter keeps the original's first bytes, its size and its SHA-256 (docs/design/dead-letters.md)."""

DETAIL_MAX_CHARS = 4_000
"""The longest ``detail`` kept: a validation error of a huge message can be as long as the message."""

KEY_MAX_BYTES = 1_024
"""The longest original key kept, as the letter's key and in ``original_key``."""


@dataclass(frozen=True)
class Refused:
    """A message as read, with where it was read from."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int


def letter_of(
    refused: Refused, reason: str, detail: str, failed_at: datetime, *, max_bytes: int = DEAD_LETTER_MAX_BYTES
) -> DeadLetter:
    """The dead letter of ``refused``, whose JSON is at most ``max_bytes`` (the original is cut to fit)."""
    original = refused.value or b""
    key = refused.key[:KEY_MAX_BYTES] if refused.key is not None else None
    letter = DeadLetter(
        reason=reason,
        detail=_cut(detail, DETAIL_MAX_CHARS),
        original=base64.b64encode(original).decode(),
        original_key=key.decode(errors="replace") if key is not None else None,
        original_size=len(original),
        original_sha256=hashlib.sha256(original).hexdigest(),
        original_truncated=False,
        source_topic=refused.topic,
        source_partition=refused.partition,
        source_offset=refused.offset,
        failed_at=failed_at,
    )
    size = len(letter.model_dump_json())
    if size <= max_bytes:
        return letter
    # base64 takes 4 bytes per 3 of the original; what the original's text does not use stays.
    room = max(0, max_bytes - (size - len(letter.original)))
    kept = original[: room // 4 * 3]
    return letter.model_copy(update={"original": base64.b64encode(kept).decode(), "original_truncated": True})


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 30]} ... ({len(text)} characters)"


Send = Callable[[bytes | None, bytes], Awaitable[None]]
"""Sends a record (key, value) to the dead-letter topic and returns once Kafka acknowledged it."""


class DeadLetters:
    """Sends dead letters and counts them by reason (``dxpulse_dead_letters_total``).

    A letter Kafka refuses for its size (a broker or topic whose limit is below the default) is
    sent again without the original; its size and digest still identify it. Any other send error
    is raised: the worker then stops before acknowledging the message, and reads it again.
    """

    def __init__(
        self,
        send: Send,
        registry: CollectorRegistry,
        clock: Callable[[], datetime],
        *,
        reasons: tuple[str, ...] = (),
        on_letter: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self._send = send
        self._clock = clock
        self._on_letter = on_letter
        self.counted = Counter(
            "dxpulse_dead_letters", "Messages dead-lettered, by reason", ["reason"], registry=registry
        )
        for reason in reasons:  # exported at 0 from the start, so a rate has a first sample
            self.counted.labels(reason=reason)

    async def send(self, refused: Refused, reason: str, detail: str) -> None:
        letter = letter_of(refused, reason, detail, self._clock())
        key = refused.key[:KEY_MAX_BYTES] if refused.key is not None else None
        log.warning(
            "dead-lettered %s %s@%s (%s): %s",
            refused.topic,
            refused.partition,
            refused.offset,
            reason,
            _cut(detail, 300),
            # Fields of a JSON log line (dxpulse.log_format), to find the message by.
            extra={"key": key.decode(errors="replace") if key is not None else None, "reason": reason},
        )
        try:
            await self._send(key, letter.model_dump_json().encode())
        except Exception as error:
            if not isinstance(error, TOO_LARGE):
                raise
            bare = letter.model_copy(update={"original": "", "original_truncated": True})
            await self._send(key, bare.model_dump_json().encode())
        self.counted.labels(reason=reason).inc()
        self._on_letter(reason)


TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
"""aiokafka's refusal before sending, and the broker's answers to a record or batch over its limit."""
