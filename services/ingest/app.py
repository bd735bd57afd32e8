"""The ingest HTTP API: authenticate, validate, publish with acks=all, and only then answer 2xx."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import ValidationError

from dxpulse.catalog import Catalog, default_catalog
from dxpulse.registry import Registry, default_registry
from dxpulse.topics import REPORTS
from dxpulse.validation import Problem, validate_report
from schemas import Report
from schemas.events import report_key
from services.ingest.problems import problem
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class IngestMetrics:
    """The ingest service's Prometheus metrics, in a registry of its own (one per app instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "dxpulse_ingest_reports_received", "Reports received over HTTP", registry=self.registry
        )
        self.accepted = Counter(
            "dxpulse_ingest_reports_accepted", "Reports acknowledged by Kafka", registry=self.registry
        )
        self.rejected = Counter(
            "dxpulse_ingest_reports_rejected",
            "Reports refused, by reason",
            ["reason"],
            registry=self.registry,
        )


def create_app(
    settings: IngestSettings,
    *,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    clock: Clock = _utcnow,
) -> FastAPI:
    """Build the ingest API; the Kafka producer starts and stops with the app's lifespan."""
    catalog = catalog or default_catalog()
    registry = registry or default_registry()
    metrics = IngestMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(settings.produce_timeout_s * 1000),
        )
        await producer.start()
        app.state.producer = producer
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(
        title="dxpulse ingest",
        version="1",
        summary="Local systems send digital-transformation reports here.",
        lifespan=lifespan,
    )

    def refuse(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
        metrics.rejected.labels(reason=slug).inc()
        return problem(status, slug, title, detail, **extra)

    @app.post("/v1/reports", status_code=202, response_model=None)
    async def send_report(request: Request) -> JSONResponse:
        """Accept one report; 202 means Kafka has it with acks=all."""
        metrics.received.inc()
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            return refuse(
                413,
                "body-too-large",
                "Request body too large",
                f"the body is {len(body)} bytes; the limit is {settings.max_body_bytes}",
            )
        try:
            report = Report.model_validate_json(body)
        except ValidationError as error:
            if any(e["type"] == "json_invalid" for e in error.errors()):
                return refuse(400, "malformed-json", "Malformed JSON", "the body is not valid JSON")
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in error.errors(include_url=False)
            ]
            return refuse(
                422,
                "invalid-report",
                "Report does not match the schema",
                "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                errors=errors,
            )
        verdict = validate_report(report, catalog, registry, clock())
        if isinstance(verdict, Problem):
            return refuse(422, verdict.type, verdict.title, verdict.detail, field=verdict.field)
        producer: AIOKafkaProducer = request.app.state.producer
        try:
            await asyncio.wait_for(
                producer.send_and_wait(
                    REPORTS,
                    key=report_key(report.indicator, report.period).encode(),
                    value=report.model_dump_json().encode(),
                ),
                timeout=settings.produce_timeout_s,
            )
        except (KafkaError, TimeoutError) as error:
            log.warning("Kafka did not acknowledge report %s: %r", report.event_id, error)
            return problem(
                503,
                "kafka-unavailable",
                "Report not accepted: the event log is unavailable",
                "nothing was stored; send the same report again after Retry-After seconds",
                headers={"Retry-After": "5"},
            )
        metrics.accepted.inc()
        return JSONResponse({"status": "accepted", "event_id": str(report.event_id)}, status_code=202)

    @app.get("/v1/indicators")
    async def list_indicators() -> list[dict[str, Any]]:
        """The indicator catalog: ids, kinds, period types, groups and targets."""
        return [i.model_dump(mode="json") for i in catalog.indicators]

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
