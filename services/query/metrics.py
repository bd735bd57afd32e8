"""The query API's Prometheus metrics and the middleware that counts every answer."""

from __future__ import annotations

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dxpulse.monitoring import ServiceMetrics


class QueryMetrics(ServiceMetrics):
    """The query API's Prometheus metrics, in a registry of its own (one per app instance)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = Counter(
            "dxpulse_query_requests",
            "Requests answered, by route template and HTTP status",
            ["endpoint", "status"],
            registry=self.registry,
        )


class CountRequests:
    """Counts every answer by route template and status, the unmatched and the failed too."""

    def __init__(self, app: ASGIApp, metrics: QueryMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            # The route template, not the path: one label value per endpoint, whatever the ids.
            # The router sets it on this same scope.
            endpoint = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(endpoint=endpoint, status=str(status)).inc()
