"""Pushing alerts to Alertmanager's POST /api/v2/alerts: the payload (pure) and a background pusher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx
from prometheus_client import Counter

from schemas import AlertEvent
from services.alerts.settings import AlertsSettings

log = logging.getLogger(__name__)

RESEND_FACTOR = 4
"""A firing alert's endsAt is this many resend intervals ahead, as Prometheus does: if dxpulse stops
re-sending it (a crash, a lost partition), Alertmanager resolves it by itself instead of forever."""

RESOLVED_KEPT = timedelta(minutes=15)
"""How long a resolution is re-sent, as Prometheus does, so an Alertmanager that was down sees it."""

MAX_RESOLVED = 10_000
"""Bound on resolutions held for re-sending; the oldest go first (their firing copy expires anyway)."""


def alertmanager_alert(event: AlertEvent, ends_at: datetime) -> dict[str, Any]:
    """One alert in Alertmanager's API shape; the labels are the fingerprint's parts plus severity."""
    return {
        "labels": {
            "alertname": event.rule,
            "indicator": event.indicator,
            "period": event.period,
            "scope": event.scope,
            "severity": event.severity,
        },
        "annotations": {"summary": event.summary, "fingerprint": event.fingerprint},
        "startsAt": event.starts_at.isoformat(),
        "endsAt": ends_at.isoformat(),
    }


def alertmanager_payload(
    firing: Iterable[AlertEvent], resolved: Iterable[AlertEvent], now: datetime, resend: timedelta
) -> list[dict[str, Any]]:
    """Every firing alert (ending ``RESEND_FACTOR`` resends from now) and every recent resolution.

    An alert firing again after its resolution is sent as firing only.
    """
    alerts = {e.fingerprint: alertmanager_alert(e, now + RESEND_FACTOR * resend) for e in firing}
    for event in resolved:
        if event.fingerprint not in alerts:
            alerts[event.fingerprint] = alertmanager_alert(event, event.ends_at or now)
    return list(alerts.values())


class AlertmanagerPusher:
    """Sends the current firing set and recent resolutions to Alertmanager, in the background.

    The stream only calls ``notify``, which never blocks: pushing, retries with exponential backoff
    while Alertmanager is down, and the periodic re-send that heals an Alertmanager restart all
    happen in ``run``.
    """

    def __init__(
        self,
        url: str,
        firing: Callable[[], list[AlertEvent]],
        outcomes: Counter,
        *,
        resend_s: float,
        timeout_s: float,
        max_backoff_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.url = f"{url}/api/v2/alerts"
        self.firing = firing
        self.outcomes = outcomes
        self.resend = timedelta(seconds=resend_s)
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self._resolved: OrderedDict[str, AlertEvent] = OrderedDict()
        self._wake = asyncio.Event()

    def notify(self, event: AlertEvent) -> None:
        """A transition happened: push soon (resolutions are kept for re-sending)."""
        if event.status == "resolved":
            self._resolved.pop(event.fingerprint, None)
            self._resolved[event.fingerprint] = event
            while len(self._resolved) > MAX_RESOLVED:
                self._resolved.popitem(last=False)
        self._wake.set()

    def payload(self) -> list[dict[str, Any]]:
        now = self.clock()
        for key, event in list(self._resolved.items()):
            if now - event.changed_at > RESOLVED_KEPT:
                del self._resolved[key]
        return alertmanager_payload(self.firing(), self._resolved.values(), now, self.resend)

    async def push_once(self, client: httpx.AsyncClient) -> bool:
        """One POST of the current payload; False (counted and logged) when it did not get through."""
        alerts = self.payload()
        if not alerts:
            return True
        try:
            response = await client.post(self.url, json=alerts)
            response.raise_for_status()
        except httpx.HTTPError as error:
            self.outcomes.labels(outcome="error").inc()
            log.warning("alertmanager push of %d alerts to %s failed: %s", len(alerts), self.url, error)
            return False
        self.outcomes.labels(outcome="ok").inc()
        return True

    async def run(self) -> None:
        """Push at every transition and every resend interval; back off while pushes fail."""
        backoff = 1.0
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            while True:
                self._wake.clear()
                if await self.push_once(client):
                    backoff = 1.0
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.resend.total_seconds())
                else:
                    # Transitions during the backoff wait: the next push carries them all.
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)


def alertmanager_pusher(
    settings: AlertsSettings,
    firing: Callable[[], list[AlertEvent]],
    outcomes: Counter,
    clock: Callable[[], datetime],
) -> AlertmanagerPusher | None:
    """The pusher to ``settings.alertmanager_url``, or None when no Alertmanager is configured."""
    if not settings.alertmanager_url:
        return None
    return AlertmanagerPusher(
        settings.alertmanager_url,
        firing,
        outcomes,
        resend_s=settings.alertmanager_resend_s,
        timeout_s=settings.alertmanager_timeout_s,
        max_backoff_s=settings.alertmanager_max_backoff_s,
        clock=clock,
    )
