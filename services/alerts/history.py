"""The alert_history rows the alerts worker writes from its own alerts topic."""

from __future__ import annotations

from typing import Any

from schemas import AlertEvent

INVALID_EVENT = "invalid-event"
"""Dead-letter reason of an alerts-topic message that is not an alert event."""

INSERT_HISTORY = """
INSERT INTO alert_history (fingerprint, status, changed_at, body, rule, indicator, period, scope,
    severity, starts_at, transition_id)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT DO NOTHING
"""


def history_row(alert: AlertEvent) -> tuple[Any, ...]:
    """The alert_history row of a transition; one per transition_id (and per fingerprint, status,
    starts_at), so a replay of the alerts topic, or a transition sent again after a crash, is stored
    once, even when judged again at another time."""
    return (
        alert.fingerprint,
        alert.status,
        alert.changed_at,
        alert.model_dump_json(),
        alert.rule,
        alert.indicator,
        alert.period,
        alert.scope,
        alert.severity,
        alert.starts_at,
        alert.transition_id,
    )


def event_row(value: bytes) -> tuple[Any, ...]:
    """The alert_history row of an alerts-topic message; raises when it is not an alert event."""
    return history_row(AlertEvent.model_validate_json(value))
