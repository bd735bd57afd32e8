"""The shape of every dxpulse event, the one definition other languages get as JSON Schema."""

from schemas.events import (
    SCHEMA_VERSION,
    AlertEvent,
    AlertStatus,
    CatalogValue,
    CountValue,
    DeadLetter,
    FlagValue,
    RatioValue,
    Report,
    ReportValue,
    Rollup,
    RollupTarget,
)

__all__ = [
    "SCHEMA_VERSION",
    "AlertEvent",
    "AlertStatus",
    "CatalogValue",
    "CountValue",
    "DeadLetter",
    "FlagValue",
    "RatioValue",
    "Report",
    "ReportValue",
    "Rollup",
    "RollupTarget",
]
