"""A small client for local systems: send reports to the ingest API and see each one's outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from schemas import Report


@dataclass(frozen=True)
class SendResult:
    """What the API answered for one report."""

    event_id: str
    status: int
    body: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return self.status == 202

    @property
    def problem(self) -> str:
        """The refusal in one line, e.g. "422 retired-reporter: province:58 ceased ..."."""
        slug = str(self.body.get("type", "")).rsplit("/", 1)[-1]
        return f"{self.status} {slug}: {self.body.get('detail', '')}"


class IngestClient:
    """Send reports to a dxpulse ingest API (one HTTP connection, reused)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout_s: float = 30.0) -> None:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout_s)

    async def __aenter__(self) -> IngestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, report: Report) -> SendResult:
        response = await self._http.post("/v1/reports", content=report.model_dump_json())
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text}
        return SendResult(str(report.event_id), response.status_code, body)
