"""Prometheus rules and Grafana dashboards: promtool accepts them, and they use only contract metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dxpulse.monitoring import CONTRACT, EXPORTER_METRICS
from dxpulse.stack.config import (
    POSTGRES_EXPORTER,
    PROMETHEUS_RULES,
    ServiceSpec,
    StackPaths,
    prometheus_config,
    service_specs,
)
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted(PROMETHEUS_RULES.glob("*.yml"))
RULES_TEST = PROMETHEUS_DIR / "tests" / "dxpulse-alerts.test.yml"
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "json"
DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))
K8S_PROMETHEUS = ROOT / "deploy" / "k8s" / "prometheus" / "prometheus.yml"

# Metric names in PromQL: dxpulse_* contract metrics (with histogram suffixes) and dxpulse:* recordings.
_METRIC = re.compile(r"\bdxpulse[_:][a-z0-9_:]+")
# The PostgreSQL exporter's metrics (EXPORTER_METRICS).
_EXPORTER_METRIC = re.compile(r"\bpg_[a-z0-9_]+")
_HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")
# Grafana's template variables, as the live test substitutes them.
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}")


def promtool(*args: str) -> str:
    """Run promtool; fail (not skip) without it: `dxpulse stack install` brings it with prometheus."""
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is missing: apt-get install prometheus (or `dxpulse stack install`)"
    result = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def exporter_names(expr: str) -> set[str]:
    """The exporter metrics an expression reads (``datname`` and other labels are not metrics)."""
    return {name for name in _EXPORTER_METRIC.findall(expr) if not re.search(rf"\b{name}\s*[=!]~?", expr)}


def recorded_names() -> set[str]:
    names = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


def metric_names(expr: str) -> set[str]:
    """The dxpulse metric families an expression reads (histogram series mapped to their family)."""
    names = set()
    for name in _METRIC.findall(expr):
        for suffix in _HISTOGRAM_PARTS:
            if name.endswith(suffix) and name.removesuffix(suffix) in CONTRACT:
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep theirs inside


def load(path: Path) -> dict[str, Any]:
    board = json.loads(path.read_text())
    assert isinstance(board, dict)
    return board


def test_promtool_checks_the_rules() -> None:
    assert RULE_FILES, f"no rules in {PROMETHEUS_RULES}"
    out = promtool("check", "rules", *map(str, RULE_FILES))
    assert out.count("SUCCESS") == len(RULE_FILES)


def test_promtool_unit_tests_of_the_pipeline_alerts() -> None:
    assert "SUCCESS" in promtool("test", "rules", str(RULES_TEST))


def test_every_alert_has_a_unit_test() -> None:
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == tested


def test_rules_read_only_contract_metrics() -> None:
    known = set(CONTRACT) | recorded_names()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                assert metric_names(rule["expr"]) <= known, (path.name, rule["expr"])
                assert exporter_names(rule["expr"]) <= set(EXPORTER_METRICS), (path.name, rule["expr"])


def test_generated_stack_config_scrapes_every_service_with_a_port(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path, prometheus_scrape_interval_s=2)
    specs = [
        *service_specs(settings, StackPaths.for_settings(settings)),
        # A service someone adds later is scraped with no change to the generator.
        ServiceSpec("exporter", ("python", "-m", "services.exporter"), ready_port=7070),
        ServiceSpec("portless", ("true",)),
    ]
    text = prometheus_config(settings, specs)
    config = yaml.safe_load(text)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert sorted(jobs) == ["aggregate", "alerts", "exporter", "history", "ingest", "query"]
    assert jobs["exporter"]["static_configs"] == [
        {"targets": ["127.0.0.1:7070"], "labels": {"system": "dxpulse"}}
    ]
    assert jobs["ingest"]["static_configs"][0]["targets"] == [f"127.0.0.1:{settings.ingest_port}"]
    assert config["global"]["scrape_interval"] == "2s"
    assert config["rule_files"] == [str(PROMETHEUS_RULES / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    out = promtool("check", "config", str(path))
    assert f"{len(RULE_FILES)} rule files found" in out


def test_generated_config_sends_alerts_to_the_stack_alertmanager_when_it_runs(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path, alertmanager_config=tmp_path / "am.yml", alertmanager_port=9)
    config = yaml.safe_load(prometheus_config(settings, []))
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9"]
    without = StackSettings(state_dir=tmp_path, alertmanager_config=None)
    assert "alerting" not in yaml.safe_load(prometheus_config(without, []))


def test_kubernetes_scrape_config_names_jobs_like_the_other_configs() -> None:
    config = yaml.safe_load(K8S_PROMETHEUS.read_text())
    assert config["rule_files"] == ["rules/*.yml"]
    (job,) = config["scrape_configs"]
    relabel = {rule.get("target_label"): rule for rule in job["relabel_configs"]}
    assert relabel["job"]["source_labels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
    assert relabel["system"]["replacement"] == "dxpulse"


def test_dashboards_exist() -> None:
    assert {p.stem for p in DASHBOARDS} == {
        "dxpulse-national",
        "dxpulse-provinces",
        "dxpulse-alerts",
        "dxpulse-pipeline",
    }
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_panels_query_contract_metrics(path: Path) -> None:
    board = load(path)
    known = set(CONTRACT) | recorded_names()
    variables = {v["name"] for v in board["templating"]["list"]}
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['title']!r} has no query"
        for target in targets:
            expr = target["expr"]
            names, exported = metric_names(expr), exporter_names(expr)
            assert names or exported or "up{" in expr, f"panel {panel['title']!r} reads no metric: {expr}"
            assert names <= known, f"panel {panel['title']!r} reads unknown metrics {names - known}"
            unknown = exported - set(EXPORTER_METRICS)
            assert not unknown, f"panel {panel['title']!r} reads exporter metrics not listed: {unknown}"
            used = {a or b for a, b in _VARIABLE.findall(expr)} - {"__rate_interval", "__range"}
            assert used <= variables, f"panel {panel['title']!r} uses undefined variables {used - variables}"
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_variables_query_contract_metrics(path: Path) -> None:
    board = load(path)
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert metric_names(variable["definition"]) <= set(CONTRACT)


def test_panel_ids_and_positions_are_unique() -> None:
    for path in DASHBOARDS:
        board = load(path)
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), path.name
        cells = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels(board)]
        assert len(cells) == len(set(cells)), path.name


def test_grafana_provider_points_at_the_dashboards_folder() -> None:
    provider = yaml.safe_load((DASHBOARD_DIR.parent / "dxpulse.yml").read_text())["providers"][0]
    # docker-compose mounts deploy/grafana/provisioning at /etc/grafana/provisioning.
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards/json"


def business_targets() -> list[tuple[str, dict[str, Any]]]:
    """Every query of the dashboards that read the business gauges (labelled with indicator ids)."""
    return [
        (path.stem, target)
        for path in DASHBOARDS
        for panel in panels(load(path))
        for target in panel.get("targets", [])
        if "dxpulse_rollup_" in target["expr"]
    ]


def test_business_panels_show_indicator_names_and_targets_not_ids() -> None:
    found = business_targets()
    assert {stem for stem, _ in found} == {"dxpulse-national", "dxpulse-provinces"}
    for stem, target in found:
        expr, legend = target["expr"], target.get("legendFormat", "")
        # Joined with the info metric on the id; several aggregator workers export it, hence max by.
        assert "* on (indicator) group_left (name" in expr, (stem, expr)
        assert re.search(r"max by \(indicator, name[\w, ]*\) \(dxpulse_indicator_info\)", expr), (stem, expr)
        assert "{{indicator}}" not in legend, (stem, legend)
        assert not legend or "{{name}}" in legend, (stem, legend)
    tiles = panels(load(DASHBOARD_DIR / "dxpulse-national.json"))
    (tile,) = [panel for panel in tiles if panel["title"].startswith("Attainment against target")]
    assert tile["targets"][0]["legendFormat"] == "{{name}} (target {{target}})"


def test_tables_show_the_indicator_name_not_its_id() -> None:
    for name in ("dxpulse-national", "dxpulse-provinces"):
        board = load(DASHBOARD_DIR / f"{name}.json")
        (table,) = [panel for panel in panels(board) if panel["type"] == "table"]
        organize = next(t["options"] for t in table["transformations"] if t["id"] == "organize")
        assert organize["excludeByName"]["indicator"] is True
        assert {"name", "target", "unit"} <= set(organize["indexByName"])


def test_the_pipeline_dashboard_shows_postgresql_from_the_exporter() -> None:
    board = load(DASHBOARD_DIR / "dxpulse-pipeline.json")
    exprs = [target["expr"] for panel in panels(board) for target in panel.get("targets", [])]
    assert "pg_up" in exprs
    assert any("pg_stat_database_numbackends" in expr for expr in exprs)


def test_the_stack_scrapes_the_postgres_exporter_it_starts(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path, postgres_exporter_port=9)
    stack = Stack(settings, report=lambda _: None)
    assert [spec.name for spec in stack.exporter_specs()] == [POSTGRES_EXPORTER]
    config = yaml.safe_load(prometheus_config(settings, [*stack.service_specs(), *stack.exporter_specs()]))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs[POSTGRES_EXPORTER]["static_configs"] == [
        {"targets": ["127.0.0.1:9"], "labels": {"system": "dxpulse"}}
    ]
    assert set(EXPORTER_METRICS.values()) == {POSTGRES_EXPORTER}
    without = Stack(StackSettings(state_dir=tmp_path, postgres_exporter=False), report=lambda _: None)
    assert without.exporter_specs() == []
    assert POSTGRES_EXPORTER not in without.components_up_starts()
    no_prometheus = Stack(StackSettings(state_dir=tmp_path, prometheus=False), report=lambda _: None)
    assert no_prometheus.exporter_specs() == []
