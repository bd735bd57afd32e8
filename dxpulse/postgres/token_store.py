"""API tokens in PostgreSQL: create, revoke, list, and look up a token's subject by its hash."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dxpulse.domain.tokens import MintedToken, hash_token, mint_token


@dataclass(frozen=True)
class TokenInfo:
    """What is stored about a token (never the token itself)."""

    token_id: str
    subject: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


async def create_token(conn: asyncpg.Connection, subject: str, label: str = "") -> MintedToken:
    """Mint a token for ``subject`` and store its hash; the caller shows ``secret`` once."""
    minted = mint_token()
    await conn.execute(
        "INSERT INTO api_tokens (token_id, token_hash, subject, label) VALUES ($1, $2, $3, $4)",
        minted.token_id,
        minted.digest,
        subject,
        label,
    )
    return minted


async def create_tokens(
    conn: asyncpg.Connection, subjects: Iterable[str], label: str
) -> dict[str, MintedToken]:
    """One new token per subject, stored in one transaction with one batched INSERT."""
    minted = {subject: mint_token() for subject in subjects}
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO api_tokens (token_id, token_hash, subject, label) VALUES ($1, $2, $3, $4)",
            [(m.token_id, m.digest, subject, label) for subject, m in minted.items()],
        )
    return minted


async def revoke_tokens(conn: asyncpg.Connection, token_ids: Iterable[str]) -> list[str]:
    """Revoke tokens by id; returns the ids that were live and are revoked now."""
    rows = await conn.fetch(
        "UPDATE api_tokens SET revoked_at = now()"
        " WHERE token_id = ANY($1::text[]) AND revoked_at IS NULL RETURNING token_id",
        list(token_ids),
    )
    return [row["token_id"] for row in rows]


async def revoke_label(conn: asyncpg.Connection, label: str) -> int:
    """Revoke every live token with ``label`` (e.g. the demo's); returns how many."""
    rows = await conn.fetch(
        "UPDATE api_tokens SET revoked_at = now() WHERE label = $1 AND revoked_at IS NULL RETURNING 1",
        label,
    )
    return len(rows)


async def list_tokens(
    conn: asyncpg.Connection, subject: str | None = None, *, include_revoked: bool = False
) -> list[TokenInfo]:
    """Tokens, newest first; only live ones unless ``include_revoked``."""
    rows = await conn.fetch(
        "SELECT token_id, subject, label, created_at, revoked_at FROM api_tokens"
        " WHERE ($1::text IS NULL OR subject = $1) AND ($2 OR revoked_at IS NULL)"
        " ORDER BY created_at DESC, token_id",
        subject,
        include_revoked,
    )
    return [TokenInfo(**dict(row)) for row in rows]


async def subject_of(pool: asyncpg.Pool, secret: str) -> str | None:
    """The subject a live token was issued for, or None for an unknown or revoked token."""
    value = await pool.fetchval(
        "SELECT subject FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL", hash_token(secret)
    )
    return None if value is None else str(value)


@asynccontextmanager
async def temporary_tokens(dsn: str, subjects: Iterable[str], label: str) -> AsyncIterator[dict[str, str]]:
    """Tokens for ``subjects`` (subject -> secret), revoked again on exit: for the demo and tests."""
    conn = await asyncpg.connect(dsn)
    try:
        issued = await create_tokens(conn, sorted(set(subjects)), label)
        try:
            yield {subject: minted.secret for subject, minted in issued.items()}
        finally:
            await revoke_tokens(conn, [minted.token_id for minted in issued.values()])
    finally:
        await conn.close()
