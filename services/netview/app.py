"""The live picture's server: informers in, the picture out as JSON and server-sent events,
traces on request."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient
from kubecore.controller.health import Health, add_health_routes
from kubecore.informer.factory import SharedInformerFactory
from kubecore.nettrace import live
from kubecore.nettrace.picture import picture
from kubecore.nettrace.trace import TraceError, parse_destination

log = logging.getLogger("netview")
STATIC = Path(__file__).parent / "static"
KINDS = (R.PODS, R.SERVICES, R.ENDPOINTSLICES, R.NODES)
COALESCE_SECONDS = 0.05  # changes this close together go out as one picture


class NetView:
    def __init__(self, client: ApiClient, registry: CollectorRegistry | None = None) -> None:
        self.client = client
        self.registry = registry or CollectorRegistry()
        self.factory = SharedInformerFactory(client)
        self.informers = {rt.plural: self.factory.informer(rt) for rt in KINDS}
        self.version = 0
        self._drawn: tuple[tuple[int, bool], dict[str, Any]] | None = None  # the picture of a version, for every page
        self.changed = asyncio.Condition()
        self.trace_seconds = Histogram("netview_trace_seconds", "Time to gather and trace one packet's path",
                                       registry=self.registry)
        for informer in self.informers.values():
            informer.add_handlers(on_add=self._bump, on_update=lambda _old, _new: self._bump(),
                                  on_delete=self._bump)

    def _bump(self, *_: Any) -> None:
        self.version += 1
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def synced(self) -> bool:
        return all(i.has_synced() for i in self.informers.values())

    def picture(self) -> dict[str, Any]:
        """The picture of the current version, drawn once however many pages follow it."""
        key = (self.version, self.synced())  # a sync can end without a change to draw
        if self._drawn is None or self._drawn[0] != key:
            store = {plural: informer.store.list() for plural, informer in self.informers.items()}
            pic = picture(store["pods"], store["services"], store["endpointslices"], store["nodes"])
            self._drawn = (key, {**pic, "version": self.version, "synced": key[1], "time": time.time()})
        return self._drawn[1]

    async def pictures(self) -> AsyncIterator[dict[str, Any]]:
        """The picture now, then after each change (bursts coalesced)."""
        seen = -1
        while True:
            if self.version != seen:
                seen = self.version
                yield self.picture()
            await self._wait_past(seen)
            await asyncio.sleep(COALESCE_SECONDS)

    async def _wait_past(self, seen: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.version != seen)

    async def trace(self, source: str, destination: str, protocol: str, *, do_probe: bool = False
                    ) -> dict[str, Any]:
        """Raises TraceError for what the caller asked wrongly."""
        ns, _, name = source.rpartition("/")
        ns = ns or "default"
        dest = parse_destination(destination, ns, protocol)
        started = time.monotonic()
        world, warnings = await live.gather(self.client)
        pod = world.pod(ns, name)
        if pod is None:
            raise TraceError(f'pods "{name}" not found in namespace {ns}')
        why_not = live.not_probeable(pod, dest, do_probe)
        if why_not:
            raise TraceError(why_not)
        account = (await live.traced(self.client, world, pod, dest, do_probe=do_probe, warnings=warnings)).to_json()
        self.trace_seconds.observe(time.monotonic() - started)
        return {**account, "warnings": warnings}


def _status(error: ApiError) -> web.Response:
    return web.json_response(error.to_status(), status=error.code)


VIEW = web.AppKey("view", NetView)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def get_picture(request: web.Request) -> web.Response:
    return web.json_response(request.app[VIEW].picture())


async def events(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    try:
        async for pic in request.app[VIEW].pictures():
            await resp.write(f"event: picture\ndata: {json.dumps(pic, separators=(',', ':'))}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return resp


async def get_trace(request: web.Request) -> web.Response:
    q = request.query
    if not q.get("from") or not q.get("to"):
        return _status(ApiError(400, "BadRequest", "give from=<namespace>/<pod> and to=<destination>"))
    try:
        return web.json_response(await request.app[VIEW].trace(q["from"], q["to"], q.get("protocol", "TCP"),
                                                               do_probe=q.get("probe") in ("1", "true")))
    except TraceError as exc:
        return _status(ApiError(400, "BadRequest", str(exc)))
    except ApiError as exc:
        return _status(exc if 400 <= exc.code < 600 else ApiError(500, "InternalError", exc.message))


def create_app(view: NetView) -> web.Application:
    app = web.Application()
    app[VIEW] = view
    add_health_routes(app, Health(registry=view.registry, informers=view.informers.values))
    app.router.add_get("/", index)
    app.router.add_get("/api/picture", get_picture)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/trace", get_trace)
    return app
