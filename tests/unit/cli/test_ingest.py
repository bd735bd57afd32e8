"""``dxpulse send`` without a server: an ingest it cannot reach is one clear error, not a traceback."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dxpulse.cli.main import app as cli_app
from dxpulse.stack.testing import free_ports

CSV = (
    "reporter,indicator,period,observed_at,kind,value\n"
    "province:79,emc_connection,2024-H1,2024-06-30T10:00:00Z,flag,1\n"
)


def test_send_to_an_unreachable_ingest_says_what_to_check(tmp_path: Path) -> None:
    reports = tmp_path / "reports.csv"
    reports.write_text(CSV, encoding="utf-8")
    url = f"http://127.0.0.1:{free_ports(1)[0]}"  # nothing listens there
    result = CliRunner().invoke(cli_app, ["send", str(reports), "--token", "dxp_x_y", "--ingest-url", url])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert f"cannot reach the ingest at {url}" in result.stderr
    assert "--ingest-url" in result.stderr
    assert "Traceback" not in result.output
