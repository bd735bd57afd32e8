"""What a scoreboard alert says in Alertmanager: the description with its units, and the links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dxpulse.domain.catalog import default_catalog
from schemas import AlertEvent
from schemas.events import ROLLUP_NAMES_LIMIT
from services.alerts.alertmanager import Annotations
from services.alerts.settings import AlertsSettings

AT = datetime(2025, 2, 1, tzinfo=UTC)
ANNOTATE = Annotations(default_catalog(), "https://docs.example.org", "https://scoreboard.example.org")
PAGE = "https://scoreboard.example.org/indicators/emc_connection?period=2024-H1"


def event(
    rule: str = "below_target",
    reporters: list[str] | None = None,
    indicator: str = "emc_connection",
    value: float | None = 0.5,
) -> AlertEvent:
    return AlertEvent.model_validate(
        {
            "fingerprint": "f1",
            "rule": rule,
            "indicator": indicator,
            "period": "2024-H1",
            "scope": "national",
            "status": "firing",
            "severity": "warning",
            "summary": "one line",
            "value": value,
            "target": 1.0,
            "reporters": reporters if reporters is not None else [],
            "starts_at": AT,
            "ends_at": None,
            "changed_at": AT,
        }
    )


def names(count: int) -> list[str]:
    return [f"province:{n:03d}" for n in range(count)]


@given(st.integers(min_value=1, max_value=3 * ROLLUP_NAMES_LIMIT))
def test_the_description_names_every_unit_up_to_the_bound_and_links_the_full_list(count: int) -> None:
    description = ANNOTATE(event(reporters=names(count)))["description"]
    shown = min(count, ROLLUP_NAMES_LIMIT)
    assert all(name in description for name in names(shown))
    assert names(count)[shown:] == [] or names(count)[shown] not in description
    # A list as long as a rollup's cut one may be cut: the page that lists them all is linked.
    if count < ROLLUP_NAMES_LIMIT:
        assert f"Units not met ({count}): " in description
        assert PAGE not in description
    else:
        assert f"Units not met, the first {shown} by id (the summary counts them all;" in description
        assert f"the scoreboard lists every one: {PAGE}): province:000, " in description


def test_each_rule_says_what_its_units_have_in_common() -> None:
    words = {
        "below_target": "Units not met (1): ministry:GI.",
        "regression": "Units fell back (1): ministry:GI.",
        "missing_reports": "Units not reported (1): ministry:GI.",
    }
    for rule, line in words.items():
        assert ANNOTATE(event(rule, ["ministry:GI"]))["description"].endswith(line)
    assert "Units" not in ANNOTATE(event("off_trajectory", ["ministry:GI"]))["description"]


def test_the_description_gives_the_figure_and_target_in_the_indicators_unit() -> None:
    share = ANNOTATE(event(value=82 / 84))["description"]
    assert share == (
        "Procedure systems connected to EMC (emc_connection), 2024-H1, scope national:"
        " value 97.6% (share of units), target 100.0% (share of units)."
    )
    catalog = default_catalog()
    count = next(i for i in catalog.indicators if i.kind == "count" and i.target is not None)
    text = ANNOTATE(event(indicator=count.id, value=50_350))["description"]
    assert f"value 50,350 {count.unit}, target 1 {count.unit}." in text
    nothing = ANNOTATE(event("missing_reports", ["ministry:GI"], value=None))["description"]
    assert "value none (nothing reported)" in nothing


def test_an_indicator_the_catalog_lacks_is_described_by_its_id() -> None:
    text = ANNOTATE(event(indicator="retired_indicator"))["description"]
    assert text.startswith(
        "retired_indicator (retired_indicator), 2024-H1, scope national: value 0.5, target 1."
    )


def test_links_go_to_the_rules_runbook_and_the_indicators_scoreboard_page() -> None:
    annotations = ANNOTATE(event("missing_reports"))
    assert annotations["runbook_url"] == "https://docs.example.org/runbooks/missing_reports/"
    assert annotations["dashboard_url"] == PAGE
    assert annotations["summary"] == "one line"
    assert annotations["fingerprint"] == "f1"


def test_link_bases_are_settings_checked_as_urls() -> None:
    settings = AlertsSettings(docs_url="https://docs.example.org/", scoreboard_url="https://s.example.org/")
    assert (settings.docs_url, settings.scoreboard_url) == (
        "https://docs.example.org",
        "https://s.example.org",
    )
    with pytest.raises(ValidationError, match="scoreboard_url"):
        AlertsSettings(scoreboard_url="scoreboard please")


def test_a_figure_without_a_target_says_so() -> None:
    untargeted = event("regression", ["ministry:GI"]).model_copy(update={"target": None})
    assert ", target none." in ANNOTATE(untargeted)["description"]
