"""The catalog and registry come from the paths the settings name, checked together; a wrong one stops a
service at start with one line per problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dxpulse.business_data import business_data, business_data_or_exit, read_business_data
from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.datafile import DataError
from dxpulse.domain.registry import default_registry
from dxpulse.settings import BusinessDataSettings
from services.query.app import create_app as create_query_app
from services.query.settings import QuerySettings
from tests.unit.domain.data_files import CATALOG, edit, packaged_registry_copy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    """A catalog of one indicator, some_flag, over the provinces."""
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    return path


def test_unset_paths_are_the_packaged_files() -> None:
    settings = BusinessDataSettings()
    assert (settings.catalog_path, settings.registry_path) == (None, None)
    assert business_data(settings) == (default_catalog(), default_registry())


def test_the_paths_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DXPULSE_CATALOG_PATH", str(tmp_path / "catalog.yaml"))
    monkeypatch.setenv("DXPULSE_REGISTRY_PATH", str(tmp_path / "registry"))
    assert BusinessDataSettings().catalog_path == tmp_path / "catalog.yaml"
    assert BusinessDataSettings().registry_path == tmp_path / "registry"
    monkeypatch.setenv("DXPULSE_CATALOG_PATH", "")
    assert BusinessDataSettings().catalog_path is None


def test_a_service_runs_with_the_files_its_settings_name(catalog_file: Path, tmp_path: Path) -> None:
    registry = packaged_registry_copy(tmp_path / "registry")
    settings = QuerySettings(catalog_path=catalog_file, registry_path=registry)
    lookup = create_query_app(settings).state.lookup
    assert [indicator.id for indicator in lookup.catalog.indicators] == ["some_flag"]
    assert lookup.registry.reporters == default_registry().reporters


def test_given_catalog_and_registry_win_over_the_settings(tmp_path: Path) -> None:
    settings = BusinessDataSettings(
        catalog_path=tmp_path / "nothing.yaml", registry_path=tmp_path / "nowhere"
    )
    given = business_data(settings, default_catalog(), default_registry())
    assert given == (default_catalog(), default_registry())


def test_a_group_the_registry_lacks_is_named_at_the_catalog_line(tmp_path: Path) -> None:
    registry = packaged_registry_copy(tmp_path / "registry")
    edit(registry / "groups.yaml", "  national:\n", "  national_bodies:\n")
    with pytest.raises(DataError) as refused:
        read_business_data(None, registry)
    catalog = (ROOT / "dxpulse" / "data" / "catalog.yaml").read_text(encoding="utf-8").splitlines()
    national = [number for number, line in enumerate(catalog, start=1) if "groups: [national]" in line]
    assert len(national) == len([i for i in default_catalog().indicators if i.groups == ("national",)])
    assert [(Path(p.file).name, p.line, p.message) for p in refused.value.problems] == [
        ("catalog.yaml", number, "no group 'national' in the registry") for number in national
    ]


def test_problems_of_both_files_are_listed(catalog_file: Path, tmp_path: Path) -> None:
    registry = packaged_registry_copy(tmp_path / "registry")
    edit(registry / "national.csv", ",2025-02-28,MOST", ",2025-02-30,MOST")
    edit(catalog_file, "kind: flag", "kind: average")
    with pytest.raises(DataError) as refused:
        read_business_data(catalog_file, registry)
    assert [(Path(p.file).name, p.line) for p in refused.value.problems] == [
        ("national.csv", 2),
        ("catalog.yaml", 5),
    ]


def test_a_process_refuses_to_start_with_one_line_per_problem(catalog_file: Path) -> None:
    edit(catalog_file, "value: 1.0", "value: 0")
    with pytest.raises(SystemExit) as stopped:
        business_data_or_exit(BusinessDataSettings(catalog_path=catalog_file), "dxpulse-test")
    assert str(stopped.value.code) == (
        f"dxpulse-test refuses to start: {catalog_file} line 8, indicators[0].target.value:"
        " Input should be greater than 0 (got 0)"
    )


def test_a_service_started_with_a_wrong_catalog_exits_with_that_line(catalog_file: Path) -> None:
    edit(catalog_file, "kind: flag", "kind: average")
    started = subprocess.run(
        [sys.executable, "-m", "services.query"],
        cwd=ROOT,
        env={**os.environ, "DXPULSE_CATALOG_PATH": str(catalog_file)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 1
    assert started.stderr.splitlines() == [
        f"dxpulse-query refuses to start: {catalog_file} line 5, indicators[0].kind: Input should be"
        " 'flag', 'ratio', 'count' or 'catalog' (got 'average')"
    ]
