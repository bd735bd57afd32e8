"""RFC 9457 problem responses: every refusal says what is wrong and what to fix."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_BASE = "https://dxpulse.dev/problems/"
"""Problem type URIs are this base plus a slug documented in README.md."""


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, **extensions}
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")
