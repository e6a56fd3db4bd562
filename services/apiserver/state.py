"""Everything one API server process holds: settings, etcd, storage, watch caches, metrics,
and the background work the server itself does (namespace deletion, overdue pods, expired
Events)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from kubecore.api import propagation as P
from kubecore.api import resources as R
from kubecore.api.errors import ApiError, bad_request
from kubecore.api.types import Obj
from kubecore.printers import tables as T
from services.apiserver import objects, strict, tables
from services.apiserver.etcd import Etcd
from services.apiserver.metrics import ApiMetrics
from services.apiserver.nodeproxy import NodeProxy
from services.apiserver.requests import Target
from services.apiserver.settings import Settings
from services.apiserver.storage import Storage
from services.apiserver.watchcache import WatchCache

log = logging.getLogger("apiserver")
# How a namespace's content is deleted: Background, as kube's namespace controller says it,
# so a GC finalizer an object carries (orphan, foregroundDeletion) goes instead of holding
# the namespace until the garbage collector gets to it.
PURGE = {"propagationPolicy": P.BACKGROUND}
NAMESPACE_RETRY_SECONDS = 1.0  # between passes over a Terminating namespace's content


def unchanged_since(resource_version: str) -> Callable[[Obj], None]:
    """A delete precondition for the sweeps: the object is as they saw it."""
    def check(current: Obj) -> None:
        if current["metadata"]["resourceVersion"] != resource_version:
            raise bad_request("changed")
    return check


@dataclass
class ApiState:
    settings: Settings
    etcd: Etcd
    storage: Storage
    metrics: ApiMetrics
    caches: dict[str, WatchCache] = field(default_factory=dict)
    tasks: set[asyncio.Task] = field(default_factory=set)
    # Namespaces this process marked Terminating; checked before the watch cache, which may
    # not have seen the mark yet when the next create arrives.
    terminating: set[str] = field(default_factory=set)
    emptying: set[str] = field(default_factory=set)  # namespaces whose content goes now
    nodes: NodeProxy = field(default_factory=NodeProxy)

    # -- watch -----------------------------------------------------------------
    async def watch(self, request: web.Request, t: Target, sel: Any) -> web.StreamResponse:
        from services.apiserver.watch import serve_watch

        gauge = self.metrics.watchers.labels(t.rt.plural)
        counter = self.metrics.watch_events.labels(t.rt.plural)
        return await serve_watch(
            request, t, sel, self.caches[t.rt.plural],
            bookmark_interval=self.settings.bookmark_interval,
            render=self.event_renderer(request, t.rt),
            on_open=gauge.inc, on_close=gauge.dec, count=counter.inc,
            list_now=lambda: self.storage.list(t.rt, t.namespace), revision_now=self.etcd.revision)

    # -- presentation: Tables and metadata-only forms; field validation -------------
    def event_renderer(self, request: web.Request, rt: R.ResourceType) -> Callable | None:
        wanted = tables.negotiate(request)
        return tables.event_renderer(wanted, rt) if wanted else None

    def present_list(self, request: web.Request, rt: R.ResourceType, lst: Obj) -> Obj:
        wanted = tables.negotiate(request)
        return tables.present_list(wanted, rt, lst) if wanted else lst

    def present_object(self, request: web.Request, rt: R.ResourceType, obj: Obj) -> Obj:
        wanted = tables.negotiate(request)
        return tables.present_object(wanted, rt, obj) if wanted else obj

    def check_strict(self, request: web.Request, rt: R.ResourceType, body: Obj) -> None:
        strict.check(request, rt, body)

    async def node_proxy(self, request: web.Request, t: Target) -> web.StreamResponse:
        return await self.nodes.serve(self, request, t)

    # -- background work -----------------------------------------------------------
    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def terminate_namespace(self, name: str, check: Callable[[Obj], None]) -> Obj:
        """Mark the namespace Terminating, then delete its content in the background and
        the namespace last, as the namespace controller does."""
        async def mark(current: Obj) -> Obj | None:
            check(current)
            if current["metadata"].get("deletionTimestamp"):
                return None
            current["metadata"]["deletionTimestamp"] = objects.now_rfc3339()
            current.setdefault("status", {})["phase"] = "Terminating"
            return current

        obj, _ = await self.storage.update(R.NAMESPACES, None, name, mark)
        self._start_emptying(name)
        return obj

    async def resume_terminating_namespaces(self) -> None:
        """At start-up: finish the namespaces a stopped server marked Terminating but did not
        empty (the namespace controller's work resumes after a restart in a real cluster)."""
        cache = self.caches["namespaces"]
        await cache.ready.wait()
        for obj, _ in list(cache.current(R.NAMESPACES.key_prefix())):
            if obj["metadata"].get("deletionTimestamp"):
                self._start_emptying(obj["metadata"]["name"])

    def _start_emptying(self, name: str) -> None:
        self.terminating.add(name)
        if name not in self.emptying:  # one emptier per namespace in this process
            self.emptying.add(name)
            self.spawn(self._empty_namespace(name))

    async def _empty_namespace(self, name: str) -> None:
        try:
            await self._empty_namespace_now(name)
        finally:
            self.emptying.discard(name)

    async def _empty_namespace_now(self, name: str) -> None:
        from services.apiserver.handlers import delete_one

        # Until the namespace is gone, however long its content takes (a finalizer may hold
        # an object for hours): a pass that gave up would leave it Terminating for good.
        while True:
            remaining = 0
            try:
                for rt in R.ALL:
                    if not rt.namespaced:
                        continue
                    objs, _ = await self.storage.list(rt, name)
                    for o in objs:
                        remaining += 1
                        t = Target(rt, name, o["metadata"]["name"], None)
                        try:
                            await delete_one(self, t, o["metadata"]["name"], PURGE)
                        except ApiError as exc:
                            if exc.code != 404:
                                raise
                if remaining == 0:
                    await self.storage.delete(R.NAMESPACES, None, name)
                    self.terminating.discard(name)
                    return
            except ApiError as exc:
                if exc.code == 404:
                    self.terminating.discard(name)
                    return
                log.warning("namespace %s: deleting content: %s", name, exc)
            await asyncio.sleep(NAMESPACE_RETRY_SECONDS)

    async def sweep_overdue_pods(self) -> None:
        """Pods whose node never confirmed the deletion go once their grace period has long
        passed (the node may be gone)."""
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            cache = self.caches.get("pods")
            if cache is None:
                continue
            limit = datetime.now(UTC) - timedelta(seconds=self.settings.pod_force_delete_after)
            for obj, _ in list(cache.current(R.PODS.key_prefix())):
                meta = obj["metadata"]
                ts = meta.get("deletionTimestamp")
                if not ts or meta.get("finalizers"):  # finalizers hold a pod as any object
                    continue
                try:
                    if objects.parse_rfc3339(ts) > limit:
                        continue
                    await self.storage.delete(R.PODS, meta["namespace"], meta["name"],
                                              unchanged_since(meta["resourceVersion"]))
                    log.info("pod %s/%s removed: grace period long passed", meta["namespace"], meta["name"])
                except (ApiError, ValueError):
                    continue

    async def sweep_expired_events(self) -> None:
        """Events go `event_ttl` after their last occurrence (kube-apiserver's --event-ttl,
        which etcd leases enforce there; a repeat that counts an Event up renews it)."""
        while True:
            await asyncio.sleep(self.settings.event_sweep_interval)
            try:
                await self._sweep_expired_events_once()
            except Exception:
                log.exception("sweeping expired events failed; trying again next time")

    async def _sweep_expired_events_once(self) -> None:
        cache = self.caches.get("events")
        if cache is None:
            return
        limit = datetime.now(UTC) - timedelta(seconds=self.settings.event_ttl)
        expired = [obj for obj, _ in list(cache.current(R.EVENTS.key_prefix()))
                   if event_expired(obj, limit)]
        removed = 0
        for obj in expired:
            meta = obj["metadata"]
            try:  # one counted up meanwhile is kept
                await self.storage.delete(R.EVENTS, meta["namespace"], meta["name"],
                                          unchanged_since(meta["resourceVersion"]))
                removed += 1
            except ApiError:
                continue
        if removed:
            log.info("%d expired event(s) removed", removed)


def event_expired(ev: Obj, limit: datetime) -> bool:
    """Whether the Event's latest time (its last occurrence, or its creation) is before
    `limit`."""
    # `series` is stored as the client sent it (the server does not model it): anything but
    # an object there is no time, not an error
    series = ev.get("series")
    times = [T.parse_time(t) for t in (
        ev.get("lastTimestamp"), ev.get("firstTimestamp"), ev.get("eventTime"),
        series.get("lastObservedTime") if isinstance(series, dict) else None,
        (ev.get("metadata") or {}).get("creationTimestamp"))]
    known = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times if t is not None]
    return bool(known) and max(known) < limit
