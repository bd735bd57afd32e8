"""Local development stack: Kafka, PostgreSQL, Prometheus and the dxpulse services as processes."""

from __future__ import annotations

from dxpulse.stack.config import ServiceSpec, StackPaths
from dxpulse.stack.errors import StackError
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import ComponentStatus, Stack

__all__ = [
    "ComponentStatus",
    "ServiceSpec",
    "Stack",
    "StackError",
    "StackPaths",
    "StackSettings",
]
