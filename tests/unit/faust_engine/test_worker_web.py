"""The faust workers' web servers: where they listen and which pages they serve (no server started)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any, cast

import faust
import pytest
from prometheus_client import CollectorRegistry

from dxpulse.faust_engine.support import add_metrics_page, new_faust_app
from dxpulse.settings import WorkerSettings
from services.aggregate.app import create_app as create_aggregate
from services.aggregate.settings import AggregateSettings
from services.alerts.app import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.history.app import create_app as create_history
from services.history.settings import HistorySettings

FAUST_PAGES = ("/table/", "/table/{name}/", "/router/", "/graph/", "/performance/", "/assignment/", "/")
"""Pages of faust's own: the tables' contents, the cluster's layout, statistics and its index."""


@pytest.fixture(autouse=True)
def _no_dxpulse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's DXPULSE_* variables must not change the defaults tested.
    for name in list(os.environ):
        if name.startswith("DXPULSE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def build() -> Iterator[Callable[[Callable[[], faust.App]], faust.App]]:
    """Apps made by a factory on loops of their own, closed afterwards; they never start."""
    loops: list[asyncio.AbstractEventLoop] = []

    def make(factory: Callable[[], faust.App]) -> faust.App:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loops.append(loop)
        app = factory()
        loops.append(cast(Any, app.consumer)._thread.thread_loop)  # made, never run
        return app

    yield make
    asyncio.set_event_loop(None)
    for loop in loops:
        loop.close()


def served(app: faust.App) -> set[str]:
    """The paths the app's web server serves, once it has set up its pages as it does at start."""
    app.web.init_server()
    return set(app.web.views)


def test_a_worker_serves_its_metrics_and_none_of_fausts_pages(
    build: Callable[[Callable[[], faust.App]], faust.App],
) -> None:
    settings = WorkerSettings(kafka_bootstrap="localhost:1")
    app = build(lambda: new_faust_app("unit-web", settings, web_port=6066))
    add_metrics_page(app, CollectorRegistry())
    assert served(app) == {"/metrics"}


def test_debug_pages_serve_fausts_pages_when_an_operator_turns_them_on(
    build: Callable[[Callable[[], faust.App]], faust.App],
) -> None:
    settings = WorkerSettings(kafka_bootstrap="localhost:1", worker_debug_pages=True)
    app = build(lambda: new_faust_app("unit-web-debug", settings, web_port=6066))
    add_metrics_page(app, CollectorRegistry())
    assert served(app) >= {"/metrics", *FAUST_PAGES}


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "0.0.0.0"])
def test_the_web_server_listens_on_the_configured_host(
    build: Callable[[Callable[[], faust.App]], faust.App], host: str
) -> None:
    settings = WorkerSettings(kafka_bootstrap="localhost:1", worker_web_host=host)
    app = build(lambda: new_faust_app("unit-web-bind", settings, web_port=6066))
    # faust's aiohttp server listens on web_bind; web_host is only the name it advertises.
    assert (app.conf.web_bind, app.conf.web_host, app.conf.web_port) == (host, host, 6066)


def test_the_default_host_is_loopback() -> None:
    assert WorkerSettings().worker_web_host == "127.0.0.1"
    assert WorkerSettings().worker_debug_pages is False


@pytest.mark.parametrize(
    ("factory", "pages"),
    [
        (lambda: create_aggregate(AggregateSettings(kafka_bootstrap="localhost:1")), {"/metrics"}),
        # The alerts firing now: dxpulse's own page, the same scope-level figures as /metrics.
        (lambda: create_alerts(AlertsSettings(kafka_bootstrap="localhost:1")), {"/metrics", "/alerts"}),
        (lambda: create_history(HistorySettings(kafka_bootstrap="localhost:1")), {"/metrics"}),
    ],
    ids=["aggregate", "alerts", "history"],
)
def test_each_worker_serves_only_its_own_pages_on_loopback(
    build: Callable[[Callable[[], faust.App]], faust.App],
    factory: Callable[[], faust.App],
    pages: set[str],
) -> None:
    app = build(factory)
    assert app.conf.web_bind == "127.0.0.1"
    assert served(app) == pages
