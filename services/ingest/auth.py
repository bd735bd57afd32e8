"""Token lookups cached for a short time, so revocation takes effect within the TTL."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from dxpulse.domain.tokens import hash_token

Lookup = Callable[[str], Awaitable[str | None]]


class TokenCache:
    """Subjects of tokens by token hash, including "no such token" (so garbage cannot flood the database).

    The cache keys are hashes: the tokens themselves are held only while a request runs.
    """

    def __init__(
        self,
        lookup: Lookup,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    async def subject(self, token: str) -> str | None:
        """The subject the token was issued for, None when unknown or revoked; raises if the store fails."""
        key = hash_token(token)
        now = self._clock()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        subject = await self._lookup(token)
        if self._ttl_s > 0:
            self._entries[key] = (now + self._ttl_s, subject)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return subject
