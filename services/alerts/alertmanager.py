"""Pushing alerts to Alertmanager's POST /api/v2/alerts: the payload (pure) and a background pusher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from prometheus_client import Counter

from dxpulse.domain.catalog import Catalog, Indicator
from dxpulse.domain.rules import amount
from schemas import AlertEvent
from schemas.events import ROLLUP_NAMES_LIMIT
from services.alerts.settings import AlertsSettings

log = logging.getLogger(__name__)

RESEND_FACTOR = 4
"""A firing alert's endsAt is this many resend intervals ahead, as Prometheus does: if dxpulse stops
re-sending it (a crash, a lost partition), Alertmanager resolves it by itself instead of forever."""

RESOLVED_KEPT = timedelta(minutes=15)
"""How long a resolution is re-sent, as Prometheus does, so an Alertmanager that was down sees it."""

MAX_RESOLVED = 10_000
"""Bound on resolutions held for re-sending; the oldest go first (their firing copy expires anyway)."""


DESCRIPTION_NAMES = ROLLUP_NAMES_LIMIT
"""Units a description names at most: every one a rollup can name. Beyond that (or when the rollup's
own list was cut), the description says so and the scoreboard page linked lists them all."""

AUDIENCE = "scoreboard"
"""The ``audience`` label of every scoreboard alert, which deploy/alertmanager/alertmanager.yml routes
on (the pipeline's own alerts carry ``operators``)."""

_NAMED_AS: dict[str, str] = {
    "below_target": "not met",
    "regression": "fell back",
    "missing_reports": "not reported",
}
"""What the units an alert names have in common, by rule (off_trajectory names none)."""

Annotate = Callable[[AlertEvent], dict[str, str]]


@dataclass(frozen=True)
class Annotations:
    """The annotations of a scoreboard alert in Alertmanager: ``summary`` (the event's one line),
    ``description`` (the figure, its target and the units behind it), ``runbook_url`` (the rule's
    page under ``docs_url``), ``dashboard_url`` (the indicator's scoreboard page) and
    ``fingerprint``."""

    catalog: Catalog
    docs_url: str
    scoreboard_url: str
    names_limit: int = DESCRIPTION_NAMES

    def __call__(self, event: AlertEvent) -> dict[str, str]:
        return {
            "summary": event.summary,
            "description": self.description(event),
            "runbook_url": runbook_url(self.docs_url, event.rule),
            "dashboard_url": scoreboard_page(self.scoreboard_url, event.indicator, event.period),
            "fingerprint": event.fingerprint,
        }

    def description(self, event: AlertEvent) -> str:
        indicator = self.catalog.get(event.indicator)
        name = indicator.name if indicator is not None else event.indicator
        lines = [
            f"{name} ({event.indicator}), {event.period}, scope {event.scope}:"
            f" value {figure(indicator, event.value)},"
            f" target {'none' if event.target is None else figure(indicator, event.target)}."
        ]
        if event.rule in _NAMED_AS and event.reporters:
            lines.append(self.units(event))
        return "\n".join(lines)

    def units(self, event: AlertEvent) -> str:
        """Every unit the event names, up to ``names_limit``; beyond, the page that lists them all."""
        names = event.reporters
        shown = ", ".join(names[: self.names_limit])
        what = _NAMED_AS[event.rule]
        # A rollup names at most ROLLUP_NAMES_LIMIT, by id: a list that long may be cut, and only
        # the summary has the count.
        if len(names) < min(self.names_limit, ROLLUP_NAMES_LIMIT):
            return f"Units {what} ({len(names)}): {shown}."
        page = scoreboard_page(self.scoreboard_url, event.indicator, event.period)
        first = min(len(names), self.names_limit)
        return (
            f"Units {what}, the first {first} by id (the summary counts them all; the scoreboard"
            f" lists every one: {page}): {shown}."
        )


def figure(indicator: Indicator | None, value: float | None) -> str:
    """A value in its indicator's terms and unit: "97.6% (share of units)", "50,350 enterprises"."""
    if value is None:
        return "none (nothing reported)"
    if indicator is None:
        return f"{value:g}"
    shown = amount(indicator, value)
    return f"{shown} ({indicator.unit})" if shown.endswith("%") else f"{shown} {indicator.unit}"


def runbook_url(docs_url: str, alertname: str) -> str:
    """The runbook page of an alert on the documentation site (docs/runbooks/<alertname>.md)."""
    return f"{docs_url}/runbooks/{alertname}/"


def scoreboard_page(scoreboard_url: str, indicator: str, period: str) -> str:
    """The scoreboard's page of one indicator and period."""
    return f"{scoreboard_url}/indicators/{quote(indicator)}?{urlencode({'period': period})}"


def alertmanager_alert(event: AlertEvent, ends_at: datetime, annotate: Annotate) -> dict[str, Any]:
    """One alert in Alertmanager's API shape; the labels are the fingerprint's parts, severity and
    audience."""
    return {
        "labels": {
            "alertname": event.rule,
            "indicator": event.indicator,
            "period": event.period,
            "scope": event.scope,
            "severity": event.severity,
            "audience": AUDIENCE,
        },
        "annotations": annotate(event),
        "startsAt": event.starts_at.isoformat(),
        "endsAt": ends_at.isoformat(),
    }


def alertmanager_payload(
    firing: Iterable[AlertEvent],
    resolved: Iterable[AlertEvent],
    now: datetime,
    resend: timedelta,
    annotate: Annotate,
) -> list[dict[str, Any]]:
    """Every firing alert (ending ``RESEND_FACTOR`` resends from now) and every recent resolution.

    An alert firing again after its resolution is sent as firing only.
    """
    alerts = {e.fingerprint: alertmanager_alert(e, now + RESEND_FACTOR * resend, annotate) for e in firing}
    for event in resolved:
        if event.fingerprint not in alerts:
            alerts[event.fingerprint] = alertmanager_alert(event, event.ends_at or now, annotate)
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
        annotate: Annotate,
        resend_s: float,
        timeout_s: float,
        max_backoff_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.url = f"{url}/api/v2/alerts"
        self.firing = firing
        self.outcomes = outcomes
        self.annotate = annotate
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
        return alertmanager_payload(self.firing(), self._resolved.values(), now, self.resend, self.annotate)

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
    catalog: Catalog,
) -> AlertmanagerPusher | None:
    """The pusher to ``settings.alertmanager_url``, or None when no Alertmanager is configured."""
    if not settings.alertmanager_url:
        return None
    return AlertmanagerPusher(
        settings.alertmanager_url,
        firing,
        outcomes,
        annotate=Annotations(catalog, settings.docs_url, settings.scoreboard_url),
        resend_s=settings.alertmanager_resend_s,
        timeout_s=settings.alertmanager_timeout_s,
        max_backoff_s=settings.alertmanager_max_backoff_s,
        clock=clock,
    )
