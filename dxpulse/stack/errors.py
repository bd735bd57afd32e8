"""The one exception the stack raises for failures a developer is expected to fix."""

from __future__ import annotations


class StackError(RuntimeError):
    """An expected failure: ``message`` is one line saying what to do, ``details`` (a log tail,
    a tool's output) is extra context; the CLI prints both without a traceback."""

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message if not self.details else f"{self.message}\n{self.details}"
