"""The instruction-count harnesses run their work to the end without servers."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from bench import hot_path, ingest_path


def test_the_ingest_harness_sends_single_reports_through_the_app() -> None:
    app = typer.Typer()
    app.command()(ingest_path.main)
    for served in ("ingest", "bare"):
        result = CliRunner().invoke(app, ["--requests", "30", "--warm-up", "10", "--app", served])
        assert result.exit_code == 0, result.output
        assert f"{served}: 20 requests measured after 10" in result.output


def test_the_aggregator_harness_rolls_up_batches() -> None:
    app = typer.Typer()
    app.command()(hot_path.main)
    result = CliRunner().invoke(app, ["--batches", "2", "--warm-up", "1", "--stage", "all"])
    assert result.exit_code == 0, result.output
    assert "measured after" in result.output
