"""The ingest HTTP API: authenticate, validate, publish with acks=all, and only then answer 2xx."""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import ValidationError
from pydantic.json_schema import models_json_schema

from dxpulse.domain.catalog import Catalog, default_catalog
from dxpulse.domain.clock import Clock, utcnow
from dxpulse.domain.registry import Registry, default_registry
from dxpulse.domain.tokens import bearer_token, may_report, reporter_group
from dxpulse.domain.validation import Problem, parse_report, validate_report
from dxpulse.http.handlers import install_problem_handlers
from dxpulse.kafka.batches import Handed, send_as_batches
from dxpulse.kafka.topics import REPORTS
from schemas import Report
from schemas.events import report_key
from services.ingest import problems
from services.ingest.auth import TokenCache
from services.ingest.kafka import KafkaLink
from services.ingest.models import (
    BatchRequest,
    BatchResult,
    BatchUnavailable,
    ItemResult,
    ItemStatus,
    Outcome,
    ProblemDetails,
)
from services.ingest.ratelimit import Bucket, take
from services.ingest.settings import IngestSettings
from services.ingest.store import STORE_ERRORS, AcceptedIds, EventKey, Store

log = logging.getLogger(__name__)


class IngestMetrics:
    """The ingest service's Prometheus metrics, in a registry of its own (one per app instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reports = Counter(
            "dxpulse_ingest_reports_total",
            "Reports answered, by outcome, problem slug (reason) and reporter group",
            ["outcome", "reason", "group"],
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "dxpulse_ingest_produce_seconds",
            "Time from handing a report to the Kafka producer until acks=all",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "dxpulse_ingest_batch_size",
            "Reports per batch request",
            buckets=(1, 10, 50, 100, 250, 500),
            registry=self.registry,
        )

    def count(self, outcome: str, group: str, reason: str = "", n: int = 1) -> None:
        self.reports.labels(outcome=outcome, reason=reason, group=group).inc(n)


@dataclass
class Item:
    """One report of a request on its way through: parsed (or not), then judged, then published."""

    index: int
    report: Report | None
    problem: Problem | None = None
    status: ItemStatus = "rejected"

    @functools.cached_property
    def key(self) -> EventKey:
        """(reporter, event id); asked for several times per report on its way, so built once."""
        assert self.report is not None
        return (self.report.reporter, self.report.event_id)


def _problem_ref(slugs: str) -> dict[str, Any]:
    return {
        "description": slugs,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
    }


def _common_responses() -> dict[int | str, dict[str, Any]]:
    return {
        400: _problem_ref("malformed-json: the body is not JSON"),
        401: {
            **_problem_ref("unauthorized: no, unknown or revoked token"),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        },
        413: _problem_ref("body-too-large, batch-too-large"),
        422: _problem_ref("the report (or batch) is invalid; the type names what to fix"),
        429: {
            **_problem_ref("rate-limited"),
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
        503: {
            **_problem_ref("kafka-unavailable, store-unavailable: nothing accepted, send again"),
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
    }


def _json_body(ref: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }
    }


def create_app(
    settings: IngestSettings,
    *,
    catalog: Catalog | None = None,
    registry: Registry | None = None,
    clock: Clock = utcnow,
) -> FastAPI:
    """Build the ingest API; Kafka and PostgreSQL are connected lazily, so it starts without them."""
    catalog = catalog or default_catalog()
    registry = registry or default_registry()
    metrics = IngestMetrics()
    store = Store(settings.database_url)
    kafka = KafkaLink(settings.kafka_bootstrap, settings.produce_timeout_s, settings.kafka_retry_interval_s)
    tokens = TokenCache(store.subject, settings.token_cache_ttl_s)
    accepted_ids = AcceptedIds(settings.idempotency_cache_size)
    in_flight: dict[EventKey, asyncio.Future[None]] = {}
    buckets: dict[str, Bucket] = {}
    retry_after = {"Retry-After": str(settings.retry_after_s)}

    async def prune_accepted_ids() -> None:
        # The durable record of accepted ids would otherwise grow by every report ever sent.
        retention = timedelta(days=settings.idempotency_retention_days)
        while True:
            try:
                pruned = await store.prune_accepted(clock() - retention)
                if pruned:
                    log.info("forgot %d accepted event ids older than %s", pruned, retention)
            except STORE_ERRORS as error:  # PostgreSQL down: the next round catches up
                log.warning("could not prune accepted event ids: %r", error)
            await asyncio.sleep(settings.prune_interval_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kafka.start()
        pruner = asyncio.create_task(prune_accepted_ids(), name="prune-accepted-ids")
        try:
            yield
        finally:
            pruner.cancel()
            await asyncio.gather(pruner, return_exceptions=True)
            await kafka.stop()
            await store.close()

    app = FastAPI(
        title="dxpulse ingest",
        version="1",
        summary="Local systems send digital-transformation reports here.",
        description=(
            "Authenticate with `Authorization: Bearer <token>` (a token issued for your reporter id"
            " with `dxpulse token create`). A 2xx answer means Kafka acknowledged the report with"
            " acks=all. Every refusal is application/problem+json (RFC 9457) whose type is"
            " https://dxpulse.dev/problems/<slug>."
        ),
        lifespan=lifespan,
    )

    def refuse(found: Problem, group: str, n: int = 1, **extensions: Any) -> JSONResponse:
        metrics.count("rejected", group, found.type, n)
        headers: dict[str, str] = {}
        if found.type == "unauthorized":
            headers["WWW-Authenticate"] = 'Bearer realm="dxpulse"'
        if found.type in problems.RETRY_SLUGS and "Retry-After" not in extensions:
            headers.update(retry_after)
        headers.update(extensions.pop("headers", {}))
        return problems.problem_response(found, headers=headers, **extensions)

    async def authenticate(request: Request) -> str | JSONResponse:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return refuse(problems.UNAUTHORIZED, "unknown")
        try:
            subject = await tokens.subject(token)
        except STORE_ERRORS as error:
            log.warning("token store unavailable: %s", type(error).__name__)
            return refuse(problems.STORE_UNAVAILABLE, "unknown")
        if subject is None:
            return refuse(problems.UNAUTHORIZED, "unknown")
        return subject

    async def read_body(request: Request) -> bytes | None:
        """The body, or None as soon as it is over the limit (without reading the rest)."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > settings.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def admit(request: Request) -> tuple[str, str, bytes] | JSONResponse:
        """Authenticate and read the body: (subject, its metrics group, body), or the refusal."""
        subject = await authenticate(request)
        if isinstance(subject, JSONResponse):
            return subject
        group = reporter_group(subject)
        body = await read_body(request)
        if body is None:
            return refuse(problems.body_too_large(settings.max_body_bytes), group)
        return subject, group, body

    def rate_limit(subject: str, cost: int) -> JSONResponse | None:
        bucket, wait = take(
            buckets.get(subject), cost, time.monotonic(), settings.rate_limit_per_s, settings.rate_limit_burst
        )
        buckets[subject] = bucket
        if wait <= 0:
            return None
        seconds = max(1, math.ceil(wait))
        return refuse(
            problems.rate_limited(seconds),
            reporter_group(subject),
            cost,
            headers={"Retry-After": str(seconds)},
        )

    def judge(subject: str, item: Item, now: datetime) -> None:
        """Scope and validation at ``now``: sets ``item.problem`` when the report is refused."""
        if item.problem is not None or item.report is None:
            return
        if not may_report(subject, item.report.reporter):
            item.problem = problems.forbidden(subject, item.report.reporter)
            return
        verdict = validate_report(item.report, catalog, registry, now)
        if isinstance(verdict, Problem):
            item.problem = verdict

    async def produce(reports: list[Report]) -> list[BaseException | None]:
        """Hand every report to the producer, then wait for Kafka's acks=all on all of them together:
        per report, None once acknowledged, or why not. A lone report goes through aiokafka's
        ``send``, which gathers concurrent requests' reports; more go as a record batch per partition."""
        producer = kafka.producer
        if producer is None:
            return [ConnectionError("not connected to Kafka yet")] * len(reports)
        started = time.perf_counter()
        messages = [
            # The serializer's bytes as they are: model_dump_json() decodes them to a str first.
            (
                report_key(report.indicator, report.period).encode(),
                report.__pydantic_serializer__.to_json(report),
            )
            for report in reports
        ]
        handed: list[Handed] = [None] * len(messages)
        try:
            async with asyncio.timeout(settings.produce_timeout_s):
                if len(messages) == 1:
                    [(key, value)] = messages
                    try:
                        handed[0] = await producer.send(REPORTS, key=key, value=value)
                    except KafkaError as error:
                        handed[0] = error
                else:
                    await send_as_batches(producer, REPORTS, messages, kafka.turns, handed)
                batches = {o for o in handed if isinstance(o, asyncio.Future)}
                if batches:
                    await asyncio.wait(batches)
        except TimeoutError:
            pass  # the reports not acknowledged by now are answered unavailable
        # Per partition, for readiness and to replace a producer that can no longer send there.
        kafka.observe(producer, [key for key, _ in messages], handed)
        # One future per record batch, observed once per report it carries; the callback also reads
        # a failure (aiokafka leaves that to the future's holder), of a batch still unacknowledged too.
        carried = collections.Counter(o for o in handed if isinstance(o, asyncio.Future))
        for future, count in carried.items():
            future.add_done_callback(functools.partial(acknowledged, started, count))
        errors: list[BaseException | None] = []
        for outcome in handed:
            if outcome is None:
                errors.append(TimeoutError("not handed to Kafka in time"))
            elif not isinstance(outcome, asyncio.Future):
                errors.append(outcome)
            elif not outcome.done():
                errors.append(TimeoutError(f"no acks=all within {settings.produce_timeout_s} s"))
            elif isinstance(outcome.exception(), KafkaError):
                errors.append(outcome.exception())
            else:
                outcome.result()  # anything but Kafka's own errors is a bug: let it raise
                errors.append(None)
        return errors

    def acknowledged(started: float, reports: int, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            seconds = time.perf_counter() - started
            for _ in range(reports):
                metrics.produce_seconds.observe(seconds)

    async def publish_one(item: Item) -> BaseException | None:
        """Publish unless this event was accepted already; waits for a send of the same event in flight."""
        key = item.key
        while True:
            if key in accepted_ids:
                item.status = "duplicate"
                return None
            pending = in_flight.get(key)
            if pending is None:
                break
            await asyncio.shield(pending)
        [error] = await publish_fresh([item])
        return error

    async def publish_fresh(items: list[Item]) -> list[BaseException | None]:
        """Publish reports whose events are neither accepted nor in flight, all at once."""
        # One future for the lot: a request sending one of these events again waits for it, then
        # finds it accepted or not (publish_one).
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for item in items:
            in_flight[item.key] = done
        errors: list[BaseException | None] = [ConnectionError("cancelled")] * len(items)
        try:
            errors = await produce([item.report for item in items if item.report is not None])
            for item, error in zip(items, errors, strict=True):
                if error is None:
                    accepted_ids.add(item.key)
                    item.status = "accepted"
                else:
                    item.status = "unavailable"
        finally:
            for item in items:
                del in_flight[item.key]
            done.set_result(None)
        return errors

    async def publish(items: list[Item]) -> None:
        """Publish every valid, not yet accepted report; then record the accepted ids."""
        valid = [item for item in items if item.problem is None and item.report is not None]
        if not valid:
            return
        fresh = [item.key for item in valid if item.key not in accepted_ids]
        try:
            for key in await store.accepted(fresh):
                accepted_ids.add(key)
        except STORE_ERRORS as error:
            # Without the durable record a resend may be published twice: harmless, as reports
            # are snapshots the aggregator takes once (README, Idempotency).
            log.warning("cannot read accepted event ids (%s); relying on memory", type(error).__name__)
        # The common case goes to the producer at once; an event sent twice in this batch, or in
        # flight in another request, waits for that send and is then a duplicate (publish_one).
        now: list[Item] = []
        later: list[Item] = []
        keys: set[EventKey] = set()
        for item in valid:
            if item.key in accepted_ids:
                item.status = "duplicate"
            elif item.key in in_flight or item.key in keys:
                later.append(item)
            else:
                keys.add(item.key)
                now.append(item)
        errors = await publish_fresh(now) if now else []
        if later:
            errors += await asyncio.gather(*(publish_one(item) for item in later))
        failed = [e for e in errors if e is not None]
        if failed:
            log.warning("Kafka did not acknowledge %d report(s): %r", len(failed), failed[0])
        newly = [item.key for item in valid if item.status == "accepted"]
        try:
            await store.record(newly)
        except STORE_ERRORS as error:
            log.warning("cannot record %d accepted event ids (%s)", len(newly), type(error).__name__)

    def tally(subject: str, items: list[Item]) -> None:
        counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        for item in items:
            group = reporter_group(item.report.reporter if item.report is not None else subject)
            if item.problem is not None:
                counts["rejected", group, item.problem.type] += 1
            elif item.status == "unavailable":
                counts["rejected", group, problems.KAFKA_UNAVAILABLE.type] += 1
            else:
                counts[item.status, group, ""] += 1
        for (outcome, group, reason), n in counts.items():
            metrics.count(outcome, group, reason, n)

    async def run(subject: str, items: list[Item]) -> None:
        now = clock()  # one instant per request: its reports are judged at it
        for item in items:
            judge(subject, item, now)
        await publish(items)
        tally(subject, items)

    @app.post(
        "/v1/reports",
        status_code=202,
        response_model=None,
        openapi_extra=_json_body("Report"),
        responses={
            202: {"model": Outcome, "description": "accepted: Kafka acknowledged it (acks=all)"},
            200: {"model": Outcome, "description": "duplicate: this event id was accepted before"},
            403: _problem_ref("forbidden-reporter: the token is another reporter's"),
            **_common_responses(),
        },
    )
    async def send_report(request: Request) -> JSONResponse:
        """Send one report. 202 means Kafka has it; 200 "duplicate" means it was accepted before."""
        admitted = await admit(request)
        if isinstance(admitted, JSONResponse):
            return admitted
        subject, group, body = admitted
        parsed = parse_report(body)
        if isinstance(parsed, Problem):
            return refuse(parsed, group)
        limited = rate_limit(subject, 1)
        if limited is not None:
            return limited
        item = Item(0, parsed)
        await run(subject, [item])
        if item.problem is not None:
            return problems.problem_response(item.problem)
        if item.status == "unavailable":
            return problems.problem_response(problems.KAFKA_UNAVAILABLE, headers=retry_after)
        code = 202 if item.status == "accepted" else 200
        return JSONResponse({"status": item.status, "event_id": str(parsed.event_id)}, status_code=code)

    @app.post(
        "/v1/batches",
        response_model=None,
        openapi_extra=_json_body("BatchRequest"),
        responses={
            200: {"model": BatchResult, "description": "one result per report, in order"},
            503: {
                "description": "kafka-unavailable: the results say which reports Kafka did acknowledge",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/BatchUnavailable"}}
                },
            },
            **{k: v for k, v in _common_responses().items() if k != 503},
        },
    )
    async def send_batch(request: Request) -> JSONResponse:
        """Send up to 500 reports as {"reports": [...]}; each gets its own result."""
        admitted = await admit(request)
        if isinstance(admitted, JSONResponse):
            return admitted
        subject, group, body = admitted
        try:
            # The usual batch, every report valid: one pass of pydantic over the bytes (a quarter of
            # a batch's CPU went to decoding JSON, then validating each report's dict on its own).
            whole = BatchRequest.model_validate_json(body).reports
        except ValidationError:
            whole = None  # judged item by item below, which names each problem
        if whole is not None:
            refused = admit_batch(subject, group, len(whole))
            if refused is not None:
                return refused
            return await answer_batch(subject, [Item(i, report) for i, report in enumerate(whole)], [])
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as error:
            return refuse(
                Problem("malformed-json", "Malformed JSON", f"the body is not valid JSON: {error}"), group
            )
        raw = data.get("reports") if isinstance(data, dict) else None
        if not isinstance(raw, list) or set(data) - {"reports"}:
            return refuse(
                Problem(
                    "invalid-batch",
                    "Batch does not match the schema",
                    'send {"reports": [report, ...]}, each report as for POST /v1/reports',
                    "reports",
                ),
                group,
            )
        refused = admit_batch(subject, group, len(raw))  # before parsing: a refusal stays cheap
        if refused is not None:
            return refused
        items = []
        for index, value in enumerate(raw):
            parsed = parse_report(value, is_json=False)
            if isinstance(parsed, Problem):
                items.append(Item(index, None, parsed))
            else:
                items.append(Item(index, parsed))
        return await answer_batch(subject, items, raw)

    def admit_batch(subject: str, group: str, size: int) -> JSONResponse | None:
        """The refusal of a batch of ``size`` reports for its size or the sender's rate, if any."""
        metrics.batch_size.observe(size)
        if size > settings.max_batch_items:
            return refuse(problems.batch_too_large(size, settings.max_batch_items), group, size)
        return rate_limit(subject, size) if size else None

    async def answer_batch(subject: str, items: list[Item], raw: list[Any]) -> JSONResponse:
        """Judge and publish a batch's parsed items; ``raw`` holds the items as sent where any did
        not parse (for their event ids)."""
        await run(subject, items)
        results = [_item_result(item, raw) for item in items]
        if any(r["status"] == "unavailable" for r in results):
            body_503 = problems.problem_body(problems.KAFKA_UNAVAILABLE)
            body_503["detail"] = (
                "Kafka did not acknowledge the reports marked unavailable; send the batch again after"
                " Retry-After seconds (reports already accepted will be answered duplicate)"
            )
            body_503["results"] = results
            return JSONResponse(
                body_503, status_code=503, headers=retry_after, media_type="application/problem+json"
            )
        return JSONResponse(
            {
                "results": results,
                "accepted": sum(r["status"] == "accepted" for r in results),
                "duplicate": sum(r["status"] == "duplicate" for r in results),
                "rejected": sum(r["status"] == "rejected" for r in results),
            }
        )

    @app.get("/v1/indicators")
    async def list_indicators() -> list[dict[str, Any]]:
        """The indicator catalog: ids, kinds, period types, groups and targets."""
        return [i.model_dump(mode="json") for i in catalog.indicators]

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        """Liveness: the process answers (Kafka may still be down)."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        responses={
            503: {"description": "not connected to Kafka, or some partitions of the report topic fail"}
        },
    )
    async def ready() -> JSONResponse:
        """Readiness: Kafka answers and acknowledges reports on every partition of the report topic."""
        reason = kafka.not_ready()
        if reason is not None:
            return JSONResponse(reason, status_code=503, headers=retry_after)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        """FastAPI's document plus the body schemas the handlers parse themselves (to answer 400/413)."""
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            _, defs = models_json_schema(
                [
                    (Report, "validation"),
                    (BatchRequest, "validation"),
                    (ProblemDetails, "serialization"),
                    (BatchUnavailable, "serialization"),
                ],
                ref_template="#/components/schemas/{model}",
            )
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(defs.get("$defs", {}))
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path in ("/v1/reports", "/v1/batches"):
                document["paths"][path]["post"]["security"] = [{"bearer": []}]
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    install_problem_handlers(app, body_read_timeout_s=settings.body_read_timeout_s)
    return app


def _item_result(item: Item, raw: list[Any]) -> dict[str, Any]:
    """An item's ``ItemResult`` as JSON; built directly for the usual outcome (a model per report
    was a tenth of a batch's CPU), through the model where there is a problem to describe."""
    event_id = str(item.report.event_id) if item.report is not None else _raw_event_id(raw[item.index])
    if item.problem is None:
        return {"index": item.index, "event_id": event_id, "status": item.status, "problem": None}
    problem = ProblemDetails.model_validate(problems.problem_body(item.problem))
    return ItemResult(index=item.index, event_id=event_id, status="rejected", problem=problem).model_dump(
        mode="json"
    )


def _raw_event_id(value: Any) -> str | None:
    """The event id of an item that did not parse, when it has a usable one."""
    found = value.get("event_id") if isinstance(value, dict) else None
    return found if isinstance(found, str) and len(found) <= 64 else None
