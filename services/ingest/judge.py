"""Whether reports may be accepted: the token's scope, then the catalog and the registry in force."""

from __future__ import annotations

from collections.abc import Iterable

from dxpulse.domain.catalog import Catalog
from dxpulse.domain.clock import Clock
from dxpulse.domain.registry import Registry
from dxpulse.domain.tokens import may_report
from dxpulse.domain.validation import Problem, validate_report
from services.ingest import problems
from services.ingest.items import Item


class Judge:
    """Judges a request's parsed reports against the catalog and the registry, at one instant."""

    def __init__(self, catalog: Catalog, registry: Registry, clock: Clock) -> None:
        self.catalog = catalog
        self.registry = registry
        self.clock = clock

    def judge(self, subject: str, items: Iterable[Item]) -> None:
        """Set ``problem`` on each item the token of ``subject`` may not send, or that is invalid now.

        One instant per request: a batch's reports are all judged at the same time."""
        now = self.clock()
        for item in items:
            if item.problem is not None or item.report is None:
                continue
            if not may_report(subject, item.report.reporter):
                item.problem = problems.forbidden(subject, item.report.reporter)
                continue
            verdict = validate_report(item.report, self.catalog, self.registry, now)
            if isinstance(verdict, Problem):
                item.problem = verdict
