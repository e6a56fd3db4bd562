"""The proxy's /healthz, /readyz and /metrics.

Ready means more than "caches synced": the rules built from those full caches must be in
the kernel, so a node is not reported ready while its service traffic would still be
REJECTed or missing.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kubecore.informer.informer import Informer
from services.proxy.proxier import Proxier

PROXIER_KEY = web.AppKey("proxier", Proxier)
INFORMERS_KEY: web.AppKey[Callable[[], Iterable[Informer]]] = web.AppKey("informers")
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    waiting = sorted(i.name for i in request.app[INFORMERS_KEY]() if not i.has_synced())
    if waiting:
        return web.Response(status=503, text="caches not synced: " + ", ".join(waiting))
    if not request.app[PROXIER_KEY].ready:
        return web.Response(status=503, text="rules not synced yet")
    return web.Response(text="ok")


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(request.app[REGISTRY_KEY]),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


ROUTES = [
    web.get("/healthz", healthz),
    web.get("/livez", healthz),
    web.get("/readyz", readyz),
    web.get("/metrics", metrics),
]


def create_health_app(
    *, proxier: Proxier, informers: Callable[[], Iterable[Informer]], registry: CollectorRegistry
) -> web.Application:
    app = web.Application()
    app[PROXIER_KEY] = proxier
    app[INFORMERS_KEY] = informers
    app[REGISTRY_KEY] = registry
    app.add_routes(ROUTES)
    return app
