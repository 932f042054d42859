"""`/metrics` for Prometheus and the HTTP request latency histogram."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Histogram, generate_latest

from api.asgi_types import Message, Receive, Scope, Send
from api.http_middleware import HttpMiddleware

HTTP_LATENCY = Histogram(
    "evpower_http_request_duration_seconds",
    "HTTP request latency by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Paths that matched no route share one label, so scanners cannot blow up the series count.
UNMATCHED = "unmatched"

router = APIRouter(tags=["ops"])


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    # Everything the process registered (OCPP, workflows, ledger, HTTP) in one scrape.
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware(HttpMiddleware):
    """Times each HTTP request and labels it with the route template it matched."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, recording_send)
        finally:
            HTTP_LATENCY.labels(scope["method"], _route_template(scope), str(status)).observe(
                time.perf_counter() - started
            )


def _route_template(scope: Scope) -> str:
    """The matched route's template with its router prefix, e.g. /api/v1/stations/{id}."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    # The route knows its own path but not the prefix it was included under; the prefix is
    # whatever of the request path precedes the part the route's own pattern matches.
    pattern = getattr(route, "path_regex", None)
    path = str(scope.get("path", ""))
    if pattern is not None and not pattern.fullmatch(path):
        for index, char in enumerate(path):
            if char == "/" and index > 0 and pattern.fullmatch(path[index:]):
                return path[:index] + template
    return template
