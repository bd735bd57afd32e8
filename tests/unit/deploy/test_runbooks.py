"""Every alert, the pipeline's and the scoreboard's, says what it is and links a runbook page that exists."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from dxpulse.domain.catalog import default_catalog
from dxpulse.domain.rules import RULES
from dxpulse.stack.config import PROMETHEUS_RULES
from schemas import AlertEvent
from services.alerts.alertmanager import Annotations

ROOT = Path(__file__).resolve().parents[3]
RUNBOOKS = ROOT / "docs" / "runbooks"
DOCS_URL = "https://docs.example.org"
ANNOTATIONS = ("summary", "description", "runbook_url", "dashboard_url")


def prometheus_alerts() -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule
        for path in sorted(PROMETHEUS_RULES.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def nav_pages() -> set[str]:
    """Every page of the mkdocs nav (its YAML has no custom tags)."""

    def walk(node: Any) -> set[str]:
        if isinstance(node, str):
            return {node}
        if isinstance(node, list):
            return set().union(*(walk(item) for item in node))
        if isinstance(node, dict):
            return set().union(*(walk(value) for value in node.values()))
        return set()

    return walk(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])


def scoreboard_alert(rule: str) -> AlertEvent:
    at = datetime(2025, 2, 1, tzinfo=UTC)
    return AlertEvent.model_validate(
        {
            "fingerprint": "f1",
            "rule": rule,
            "indicator": "emc_connection",
            "period": "2024-H1",
            "scope": "national",
            "status": "firing",
            "severity": "warning",
            "summary": "the rule's one line",
            "value": 0.5,
            "target": 1.0,
            "reporters": ["ministry:GI"],
            "starts_at": at,
            "ends_at": None,
            "changed_at": at,
        }
    )


def assert_runbook(alertname: str) -> None:
    page = RUNBOOKS / f"{alertname}.md"
    assert page.is_file(), f"no runbook page {page.relative_to(ROOT)}"
    assert page.read_text().startswith(f"# {alertname}\n")
    assert f"runbooks/{alertname}.md" in nav_pages(), f"runbooks/{alertname}.md is not in mkdocs.yml's nav"
    assert f"]({alertname}.md)" in (RUNBOOKS / "index.md").read_text(), "not listed on the runbooks index"


@pytest.mark.parametrize("alertname", sorted(prometheus_alerts()))
def test_every_pipeline_alert_has_the_annotations_and_a_runbook(alertname: str) -> None:
    rule = prometheus_alerts()[alertname]
    annotations = rule["annotations"]
    assert all(annotations.get(name, "").strip() for name in ANNOTATIONS), annotations
    assert annotations["runbook_url"].endswith(f"/runbooks/{alertname}/")
    assert annotations["runbook_url"].startswith('{{ or $externalLabels.docs_url "http://127.0.0.1:8000" }}')
    assert {"severity", "audience"} <= set(rule["labels"])
    assert_runbook(alertname)


@pytest.mark.parametrize("rule", RULES)
def test_every_scoreboard_rule_has_the_annotations_and_a_runbook(rule: str) -> None:
    annotate = Annotations(default_catalog(), DOCS_URL, "https://scoreboard.example.org")
    annotations = annotate(scoreboard_alert(rule))
    assert all(annotations[name].strip() for name in ANNOTATIONS), annotations
    assert annotations["runbook_url"] == f"{DOCS_URL}/runbooks/{rule}/"
    assert_runbook(rule)


def test_every_runbook_page_belongs_to_an_alert() -> None:
    pages = {page.stem for page in RUNBOOKS.glob("*.md")} - {"index"}
    assert pages == set(prometheus_alerts()) | set(RULES)
