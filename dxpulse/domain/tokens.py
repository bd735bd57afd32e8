"""API tokens, pure: minting, hashing, parsing the Authorization header and the scope a token grants."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from dxpulse.domain.registry import Registry

TOKEN_PREFIX = "dxp_"  # noqa: S105 (a prefix, not a secret)
"""Every token starts with this, so secret scanners and humans recognise a leaked one."""
NATIONAL_WILDCARD = "national:*"
"""A subject that may report as any national body (national-only indicators)."""
READER = "reader"
"""The subject of a read token: it reads the query API (reporters' own values too) and reports nothing."""


@dataclass(frozen=True)
class MintedToken:
    """A freshly minted token: ``secret`` is shown once and never stored, only ``digest`` is."""

    token_id: str
    secret: str
    digest: str


def hash_token(secret: str) -> str:
    """The stored form of a token: SHA-256, hex.

    A plain (unsalted, fast) hash is enough here because tokens carry 256 random bits: unlike a
    password there is nothing to guess, so a slow KDF would only slow every request down. It also
    lets the ingest find a token by its hash with one indexed lookup.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def mint_token() -> MintedToken:
    """A new random token ``dxp_<id>_<secret>``; the id is public (for list and revoke)."""
    token_id = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    return MintedToken(token_id=token_id, secret=secret, digest=hash_token(secret))


def token_id_of(secret: str) -> str | None:
    """The public id inside a token ``dxp_<id>_<secret>``, None if it is not shaped like one."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, _ = secret.removeprefix(TOKEN_PREFIX).partition("_")
    return token_id if sep and token_id else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None when there is none."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        return None
    return token


def may_report(subject: str, reporter: str) -> bool:
    """Whether a token issued for ``subject`` may send reports as ``reporter``."""
    if subject == NATIONAL_WILDCARD:
        return reporter.startswith("national:")
    return subject == reporter


def subject_error(subject: str, registry: Registry) -> str | None:
    """Why ``subject`` cannot be given a token (None when it can): it must be a known reporter."""
    if subject in (NATIONAL_WILDCARD, READER) or registry.get(subject) is not None:
        return None
    return (
        f"{subject!r} is not a reporter in the registry; use an id such as province:79,"
        f" ministry:MIC, national:MPS, {NATIONAL_WILDCARD}, or {READER} for a read token"
    )


def reporter_group(reporter: str | None) -> str:
    """The metrics label of a reporter id: provinces, ministries, national or unknown."""
    kind = (reporter or "").partition(":")[0]
    return {"province": "provinces", "ministry": "ministries", "national": "national"}.get(kind, "unknown")
