"""How an answer is sent: JSON or CSV (Accept, or a ``.csv`` suffix), with an ETag and Cache-Control."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from services.query.core import Page
from services.query.tables import csv_text

Format = Literal["application/json", "text/csv"]
JSON: Format = "application/json"
CSV: Format = "text/csv"
CSV_SUFFIX = ".csv"

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or CSV (one row per item) with `Accept: text/csv` or a `.csv` suffix.",
        "content": {CSV: {"schema": {"type": "string"}}},
        "headers": {
            "ETag": {"schema": {"type": "string"}, "description": "From the rollup revisions answered."},
            "Cache-Control": {"schema": {"type": "string"}},
        },
    },
    304: {"description": "Not modified: the If-None-Match header names the current ETag."},
}
"""The OpenAPI entries every data route adds: its CSV form, its caching headers and 304."""


def merged(*entries: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI response entries merged status by status, their ``content`` media type by media type."""
    result: dict[int | str, dict[str, Any]] = {}
    for entry in entries:
        for status, response in entry.items():
            into = result.setdefault(status, {})
            for key, value in response.items():
                if key == "content":
                    content = into.setdefault("content", {})
                    for media, spec in value.items():
                        content[media] = {**content.get(media, {}), **spec}
                else:
                    into[key] = value
    return result


def preferred(accept: str | None) -> Format:
    """The format ``accept`` prefers: CSV only when it ranks text/csv above JSON (ties go to JSON)."""
    if not accept:
        return JSON
    csv_q = json_q = 0.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = _quality(params)
        if media == CSV:
            csv_q = max(csv_q, q)
        elif media in (JSON, "application/*", "*/*"):
            json_q = max(json_q, q)
    return CSV if csv_q > json_q else JSON


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def entity_tag(media_type: str, versions: Iterable[str], *extra: object) -> str:
    """A strong ETag from what identifies an answer's content: the revisions of the rollups it holds
    (ids of the values or transitions where it holds none) and ``extra`` (a page's next offset)."""
    digest = hashlib.sha256(media_type.encode())
    for part in (*versions, *(repr(e) for e in extra)):
        digest.update(b"\x00" + part.encode())
    return f'"{digest.hexdigest()[:32]}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether If-None-Match names ``tag`` (weak comparison, as RFC 9110 asks for GET), or is ``*``."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(candidate.strip().removeprefix("W/") == tag for candidate in if_none_match.split(","))


@dataclass(frozen=True)
class Caching:
    """The Cache-Control of an answer: public answers may be kept by shared caches, others not."""

    max_age_s: int
    public: bool
    """Whether the scoreboard is public (DXPULSE_QUERY_PUBLIC)."""

    def header(self, public: bool) -> str:
        return f"{'public' if public else 'private'}, max-age={self.max_age_s}"


def answer(
    request: Request,
    body: BaseModel,
    *,
    versions: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    raw: bool = False,
) -> Response:
    """``body`` as JSON, or ``rows`` as CSV, with its ETag and Cache-Control; 304 when the client
    already holds this ETag. ``raw``: the answer holds reporters' own values, which only a read
    token may see, so no shared cache may keep it."""
    media_type = preferred(request.headers.get("accept"))
    extra = (body.next_offset,) if isinstance(body, Page) else ()
    tag = entity_tag(media_type, versions, *extra)
    caching: Caching = request.app.state.caching
    headers = {
        "ETag": tag,
        "Cache-Control": caching.header(caching.public and not raw),
        # The same URL answers JSON or CSV, and with or without a token.
        "Vary": "Accept, Authorization",
    }
    if matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    if media_type == CSV:
        return Response(csv_text(rows), media_type="text/csv; charset=utf-8", headers=headers)
    return Response(body.model_dump_json(), media_type=JSON, headers=headers)


class CsvSuffix:
    """``/v1/rollups.csv`` is ``/v1/rollups`` with ``Accept: text/csv``: for a browser or a
    spreadsheet that cannot set headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path.endswith(CSV_SUFFIX) and len(path) > len(CSV_SUFFIX) + 1:
            headers = [(k, v) for k, v in scope["headers"] if k != b"accept"]
            raw_path: bytes = scope.get("raw_path") or path.encode()
            scope = {
                **scope,
                "path": path.removesuffix(CSV_SUFFIX),
                "raw_path": raw_path.removesuffix(CSV_SUFFIX.encode()),
                "headers": [*headers, (b"accept", CSV.encode())],
            }
        await self.app(scope, receive, send)
