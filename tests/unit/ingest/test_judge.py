"""Judge: the token's scope first, then the catalog and the registry, every report at one instant."""

from __future__ import annotations

from datetime import datetime

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.registry import Registry
from dxpulse.domain.validation import Problem
from services.ingest.items import Item
from services.ingest.judge import Judge
from tests.unit.conftest import NOW, done, flag, make_report, ratio


def test_each_report_is_judged_on_its_own_at_one_instant(catalog: Catalog, registry: Registry) -> None:
    instants: list[datetime] = []

    def clock() -> datetime:
        instants.append(NOW)
        return NOW

    unparsed = Problem("invalid-report", "Report does not match the schema", "event_id: ...", "event_id")
    items = [
        Item(0, make_report("province:79", flag(True))),
        Item(1, make_report("province:01", flag(True))),
        Item(2, make_report("province:79", ratio(1, 2))),
        Item(3, make_report("province:79", flag(True), period="2026-H1")),
        Item(4, None, unparsed),
    ]
    Judge(catalog, registry, clock).judge("province:79", items)
    assert [item.problem.type if item.problem else None for item in items] == [
        None,
        "forbidden-reporter",
        "wrong-value-kind",
        "future-period",
        "invalid-report",
    ]
    assert items[4].problem is unparsed
    assert len(instants) == 1


def test_a_national_token_reports_as_any_national_body(catalog: Catalog, registry: Registry) -> None:
    national = Item(0, make_report("national:MPS", done("eps-01"), indicator="essential_public_services"))
    province = Item(1, make_report("province:79", flag(True)))
    Judge(catalog, registry, lambda: NOW).judge("national:*", [national, province])
    assert national.problem is None
    assert province.problem is not None
    assert province.problem.type == "forbidden-reporter"
