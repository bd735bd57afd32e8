"""The local stack migrates the database before it starts the services, which migrate nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dxpulse.cli.db
import dxpulse.stack.postgres
from dxpulse.postgres.migrations import apply_migrations
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack


def test_up_prepares_postgresql_before_the_services(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    steps: list[str] = []

    def step(name: str) -> Any:
        def record(self: Stack, *args: Any, **kwargs: Any) -> list[Any]:
            steps.append(name)
            return []

        return record

    for method in ("start_kafka", "start_postgres", "start_specs", "status"):
        monkeypatch.setattr(Stack, method, step(method))
    settings = StackSettings(
        state_dir=tmp_path, prometheus=False, prometheus_config=None, alertmanager_config=None
    )
    Stack(settings, report=lambda _: None).up()
    assert steps == ["start_kafka", "start_postgres", "start_specs", "status"]


def test_the_stack_and_the_command_apply_the_same_migrations() -> None:
    # start_postgres applies them (the stack's _prepare_database) as `dxpulse db migrate` does.
    assert vars(dxpulse.stack.postgres)["apply_migrations"] is apply_migrations
    assert vars(dxpulse.cli.db)["apply_migrations"] is apply_migrations
