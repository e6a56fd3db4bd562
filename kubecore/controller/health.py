"""The one /healthz, /readyz and /metrics app of every service process.

- `/healthz` (and `/livez`): 200 while the process serves at all.
- `/readyz`: 503 until every informer of the process has synced (before that it would act on,
  or answer from, a partial picture), then 503 while the service's own readiness check gives a
  reason (the proxy's rules not yet in the kernel, the API server's etcd unreachable); else 200.
- `/metrics`: the Prometheus text of the registry it is given.

A process that gives `Health.named` serves these paths as the Kubernetes components do
instead (`healthz.py`: named checks, `?verbose`, `?exclude=`, `/readyz/<check>`): the API
server, whose clients and probes read kube-apiserver's answers.

`create_health_app(health)` is the app on its own port (controllers, DNS, the proxy);
`add_health_routes(app, health)` puts the same routes on an app that serves more on its port
(the API server, the node agent).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kubecore.controller import healthz as checks


class Cache(Protocol):
    """What /readyz asks of a cache (an informer): its name, and whether it has synced."""

    @property
    def name(self) -> str: ...
    def has_synced(self) -> bool: ...


CacheSource = Callable[[], Iterable[Cache]]
"""The caches of the process, asked at each request (a factory gains informers over time)."""

ReadinessCheck = Callable[[], Awaitable[str | None]]
"""None when the service is ready; otherwise why it is not (the body of the 503)."""


def _no_caches() -> Iterable[Cache]:
    return ()


@dataclass(frozen=True, kw_only=True)
class Health:
    """What the health app reports on."""
    registry: CollectorRegistry
    informers: CacheSource = _no_caches
    ready: ReadinessCheck | None = None
    named: checks.NamedChecks | None = None  # kube's healthz library's answers, when given


HEALTH = web.AppKey("health", Health)


async def healthz(request: web.Request) -> web.Response:
    named = request.app[HEALTH].named
    if named is not None:
        path = request.path.strip("/")
        return await checks.root(request, path, named.for_path(path))
    return web.Response(text="ok")


async def one_check(request: web.Request) -> web.Response:
    """`/readyz/<check>` (and /livez, /healthz) where checks are named; else Go's 404."""
    named = request.app[HEALTH].named
    path = request.path.strip("/").split("/")[0]
    found = None if named is None else await checks.single(request.match_info["check"],
                                                            named.for_path(path))
    if found is None:
        return web.Response(status=404, text="404 page not found\n", charset="utf-8",
                            headers=checks.TEXT_HEADERS)
    return found


async def readyz(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    if health.named is not None:
        return await checks.root(request, "readyz", health.named.readyz)
    waiting = sorted(i.name for i in health.informers() if not i.has_synced())
    if waiting:
        return web.Response(status=503, text="caches not synced: " + ", ".join(waiting))
    if health.ready is not None:
        reason = await health.ready()
        if reason is not None:
            return web.Response(status=503, text=reason)
    return web.Response(text="ok")


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(request.app[HEALTH].registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


ROUTES = [
    web.get("/healthz", healthz),
    web.get("/livez", healthz),
    web.get("/readyz", readyz),
    web.get("/metrics", metrics),
    web.get("/healthz/{check}", one_check),
    web.get("/livez/{check}", one_check),
    web.get("/readyz/{check}", one_check),
]


def add_health_routes(app: web.Application, health: Health) -> None:
    """Serve the health routes from `app`, next to whatever else it serves."""
    app[HEALTH] = health
    app.add_routes(ROUTES)


def create_health_app(health: Health) -> web.Application:
    app = web.Application()
    add_health_routes(app, health)
    return app


class HealthServer:
    """The health app on a port (0: any free one; `port` tells which after `start`)."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> HealthServer:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]  # the bound port, when 0 was asked for
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
