"""The clock every service reads the time from, passed in so that tests can set it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware."""


def utcnow() -> datetime:
    """The current time in UTC: the ``Clock`` of a running service."""
    return datetime.now(UTC)
