"""The small HTTP side of the DNS service: /healthz, /readyz (synced), /metrics.

Kept apart from the DNS server, which runs without it (tests, benchmarks).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .records import RecordReader

READER_KEY = web.AppKey("reader", RecordReader)
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    if request.app[READER_KEY].synced:
        return web.Response(text="ok\n")
    return web.Response(status=503, text="caches not synced\n")


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY_KEY])
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


ROUTES = [
    web.get("/healthz", healthz),
    web.get("/readyz", readyz),
    web.get("/metrics", metrics),
]


def create_health_app(*, reader: RecordReader, registry: CollectorRegistry) -> web.Application:
    app = web.Application()
    app[READER_KEY] = reader
    app[REGISTRY_KEY] = registry
    app.add_routes(ROUTES)
    return app
