"""``dxpulse check-data``: one line per problem, exit 1; the other commands read the same files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dxpulse.cli.main import app as cli_app
from tests.unit.domain.data_files import CATALOG, edit, packaged_registry_copy


def _broken(tmp_path: Path) -> tuple[Path, Path]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG.replace("kind: flag", "kind: average"), encoding="utf-8")
    registry = packaged_registry_copy(tmp_path / "registry")
    edit(
        registry / "provinces_2025.csv",
        "20,Lạng Sơn,Lang Son,province,20",
        "7x,Lạng Sơn,Lang Son,province,20",
    )
    return catalog, registry


def test_the_packaged_files_pass() -> None:
    result = CliRunner().invoke(cli_app, ["check-data"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "ok: the packaged catalog and the packaged registry: 53 indicators, 90 reporters, 4 groups\n"
    )


def test_each_problem_is_one_line_and_the_exit_code_is_1(tmp_path: Path) -> None:
    catalog, registry = _broken(tmp_path)
    result = CliRunner().invoke(
        cli_app, ["check-data", "--catalog", str(catalog), "--registry", str(registry)]
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert f"{registry}/provinces_2025.csv line 7, column code: '7x' is not a two-digit code" in lines
    assert lines[-1] == (
        f"{catalog} line 5, indicators[0].kind: Input should be 'flag', 'ratio', 'count' or 'catalog'"
        " (got 'average')"
    )


def test_json_gives_file_line_field_and_message(tmp_path: Path) -> None:
    catalog, registry = _broken(tmp_path)
    result = CliRunner().invoke(
        cli_app,
        ["check-data", "--json"],
        env={"DXPULSE_CATALOG_PATH": str(catalog), "DXPULSE_REGISTRY_PATH": str(registry)},
    )
    assert result.exit_code == 1, result.output
    problems = [json.loads(line) for line in result.stdout.splitlines()]
    assert problems[0] == {
        "file": f"{registry}/provinces_2025.csv",
        "line": 7,
        "field": "column code",
        "message": "'7x' is not a two-digit code",
    }
    assert problems[-1]["field"] == "indicators[0].kind"
    passed = CliRunner().invoke(cli_app, ["check-data", "--json"])
    assert json.loads(passed.stdout) == {"indicators": 53, "reporters": 90, "groups": 4}


def test_token_create_checks_the_reporter_against_the_registry_it_is_given(tmp_path: Path) -> None:
    registry = packaged_registry_copy(tmp_path / "registry")
    edit(registry / "national.csv", ",2025-02-28,MOST", ",2025-02-30,MOST")
    result = CliRunner().invoke(cli_app, ["token", "create", "province:79", "--registry", str(registry)])
    assert result.exit_code == 2, result.output
    assert f"error: {registry}/national.csv line 2, column valid_to" in result.stderr
    assert "Traceback" not in result.output
