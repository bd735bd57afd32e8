"""The ingest HTTP API: authenticate, validate, publish with acks=all, and only then answer 2xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from dxpulse.business_data import business_data
from dxpulse.domain.catalog import Catalog
from dxpulse.domain.clock import Clock, utcnow
from dxpulse.domain.registry import Registry
from dxpulse.http.docs import install_offline_docs
from dxpulse.http.handlers import install_problem_handlers
from dxpulse.kafka.security import kafka_security
from services.ingest.api.main import add_routes
from services.ingest.api.openapi import DESCRIPTION, SUMMARY, TITLE, IngestDocument
from services.ingest.api.refusals import Refused, answer_refused
from services.ingest.auth import TokenCache
from services.ingest.judge import Judge
from services.ingest.kafka import KafkaLink
from services.ingest.metrics import IngestMetrics
from services.ingest.producer import ReportProducer
from services.ingest.publisher import Publisher
from services.ingest.ratelimit import RateLimiter
from services.ingest.service import Ingest
from services.ingest.settings import IngestSettings
from services.ingest.store import AcceptedIds, IngestStore, Pruner, Store


def create_app(
    settings: IngestSettings,
    *,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    clock: Clock = utcnow,
    kafka: KafkaLink | None = None,
    store: IngestStore | None = None,
) -> FastAPI:
    """Build the ingest API; Kafka and PostgreSQL are connected lazily, so it starts without them.

    ``kafka`` and ``store`` stand in for the real ones (the unit tests' in-memory fakes)."""
    catalog, registry = business_data(settings, catalog, registry)
    metrics = IngestMetrics()
    store = store or Store(settings.database_url, migrate=settings.migrate_at_start)
    kafka = kafka or KafkaLink(
        settings.kafka_bootstrap,
        settings.produce_timeout_s,
        settings.kafka_retry_interval_s,
        security=kafka_security(settings),
    )
    producer = ReportProducer(kafka, metrics, settings.produce_timeout_s)
    retention = timedelta(days=settings.idempotency_retention_days)
    app = FastAPI(
        title=TITLE,
        version="1",
        summary=SUMMARY,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry hooks ask for the global providers at every request (3% of a
        # single report's instructions, bench/ingest_path.py); this app's metrics are Prometheus'.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_offline_docs(app)
    app.state.ingest = Ingest(
        settings=settings,
        catalog=catalog,
        metrics=metrics,
        tokens=TokenCache(store.subject, settings.token_cache_ttl_s),
        rate_limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
        judge=Judge(catalog, registry, clock),
        publisher=Publisher(producer, store, AcceptedIds(settings.idempotency_cache_size)),
        kafka=kafka,
        store=store,
        pruner=Pruner(store, retention, settings.prune_interval_s, clock),
    )
    add_routes(app)
    app.openapi = IngestDocument(app)  # type: ignore[method-assign]
    app.add_exception_handler(Refused, answer_refused)
    # After app.openapi is replaced: this wraps it.
    install_problem_handlers(app, body_read_timeout_s=settings.body_read_timeout_s)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    ingest: Ingest = app.state.ingest
    async with ingest.running():
        yield
