"""The EndpointSlice controller: informers on services, pods and slices; handlers that
only enqueue service keys; a worker that plans one service from the caches and applies
the plan.

A pod event enqueues the services of its namespace whose selector matches the pod's
labels before or after the change. A slice event enqueues the slice's service, unless it
is the echo of this controller's own write (see `tracker`).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.controller.health import HealthServer
from kubecore.controller.leaderelection import LeaderElector
from kubecore.controller.run import WorkerPool, run_controller
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key, split_key
from kubecore.informer.workqueue import WorkQueue
from services.endpointslice.endpoints import (
    CONTROLLER_NAME,
    managed_slice_key,
    pod_is_ready,
    selector_matches,
    service_selector,
)
from services.endpointslice.metrics import Metrics
from services.endpointslice.planner import MAX_ENDPOINTS_PER_SLICE, Plan, plan
from services.endpointslice.tracker import WriteTracker

log = logging.getLogger("endpointslice")

BY_NAMESPACE = "namespace"
BY_SERVICE = "service"


def by_namespace(obj: Obj) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def slice_service_key(slice_: Obj) -> str | None:
    """`ns/service` for a slice this controller manages, None for anyone else's."""
    return managed_slice_key(slice_, CONTROLLER_NAME)


def _by_service(slice_: Obj) -> list[str]:
    key = slice_service_key(slice_)
    return [key] if key else []


def _endpoint_facts(pod: Obj) -> tuple[Any, ...]:
    """What of a pod shows in its endpoint or decides which services select it."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    return (meta.get("uid"), meta.get("labels"), meta.get("deletionTimestamp"),
            status.get("podIP"), status.get("phase"), pod_is_ready(pod), spec.get("nodeName"),
            spec.get("hostname"), spec.get("subdomain"))


class EndpointSliceController:
    def __init__(self, client: ApiClient, *, factory: SharedInformerFactory | None = None,
                 workers: int = 4, max_endpoints: int = MAX_ENDPOINTS_PER_SLICE,
                 registry: CollectorRegistry | None = None, echo_ttl: float = 15.0) -> None:
        self.client = client
        self.factory = factory or SharedInformerFactory(client)
        self.workers = workers
        self.max_endpoints = max_endpoints
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.queue = WorkQueue("endpointslice")
        self.tracker = WriteTracker(ttl=echo_ttl)
        self.services = self.factory.informer(R.SERVICES, indexers={BY_NAMESPACE: by_namespace})
        self.pods = self.factory.informer(R.PODS, indexers={BY_NAMESPACE: by_namespace})
        self.slices = self.factory.informer(R.ENDPOINTSLICES, indexers={BY_SERVICE: _by_service})
        self.services.add_handlers(on_add=self._service_changed,
                                   on_update=lambda old, new: self._service_changed(new),
                                   on_delete=self._service_changed)
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated,
                               on_delete=self._pod_added)
        self.slices.add_handlers(on_add=self._slice_changed,
                                 on_update=lambda old, new: self._slice_changed(new),
                                 on_delete=self._slice_deleted)

    # -- handlers: only enqueue -------------------------------------------------------
    def _service_changed(self, service: Obj) -> None:
        self.queue.add(object_key(service))

    def _services_selecting(self, namespace: str, labels: Iterable[dict[str, str] | None]
                            ) -> set[str]:
        keys = set()
        for service in self.services.store.by_index(BY_NAMESPACE, namespace):
            selector = service_selector(service)
            if selector and any(selector_matches(selector, pod_labels) for pod_labels in labels):
                keys.add(object_key(service))
        return keys

    def _pod_added(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        for key in self._services_selecting(meta.get("namespace", ""), [meta.get("labels")]):
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old is not new and _endpoint_facts(old) == _endpoint_facts(new):
            return  # nothing an endpoint shows changed (old is new: a resync, go on)
        labels = [(old.get("metadata") or {}).get("labels"), (new.get("metadata") or {}).get("labels")]
        for key in self._services_selecting(new["metadata"].get("namespace", ""), labels):
            self.queue.add(key)

    def _slice_changed(self, slice_: Obj) -> None:
        key = slice_service_key(slice_)
        if key is None:
            return
        meta = slice_["metadata"]
        if self.tracker.observe(key, meta["name"], str(meta.get("resourceVersion") or "")):
            self.metrics.echoes.inc()
            return
        self.queue.add(key)

    def _slice_deleted(self, slice_: Obj) -> None:
        key = slice_service_key(slice_)
        if key is None:
            return
        if self.tracker.observe(key, slice_["metadata"]["name"], None):
            self.metrics.echoes.inc()
            return
        self.queue.add(key)

    # -- the worker ---------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        started = time.perf_counter()
        result = "error"
        try:
            result = await self._reconcile(key)
        finally:
            self.metrics.syncs.labels(result).inc()
            self.metrics.sync_seconds.observe(time.perf_counter() - started)

    async def _reconcile(self, key: str) -> str:
        if self.tracker.waiting(key):
            # The cache has not shown our last writes yet: planning now would repeat them.
            # Their echo brings the key back; the delay is the fallback if it never comes.
            self.queue.add_after(key, self.tracker.time_left(key) + 0.01)
            return "waiting"
        namespace, _ = split_key(key)
        service = self.services.store.get(key)
        existing = self.slices.store.by_index(BY_SERVICE, key)
        pods = self.pods.store.by_index(BY_NAMESPACE, namespace or "") if service else []
        the_plan = plan(service, pods, existing, max_endpoints=self.max_endpoints)
        if the_plan.empty:
            return "noop"
        await self.apply(key, the_plan)
        return "changed"

    async def apply(self, key: str, the_plan: Plan) -> None:
        """Creates, then updates, then deletes: endpoints move into their new slices before
        the old ones go, so none is missing in between."""
        namespace, _ = split_key(key)
        for obj in the_plan.to_create:
            created = await self.client.create(R.ENDPOINTSLICES, obj, namespace)
            self.metrics.writes.labels("create").inc()
            self._expect(key, created)
        for obj in the_plan.to_update:
            updated = await self.client.replace(R.ENDPOINTSLICES, obj)  # CAS on resourceVersion
            self.metrics.writes.labels("update").inc()
            self._expect(key, updated)
        for obj in the_plan.to_delete:
            meta = obj["metadata"]
            try:
                await self.client.delete(R.ENDPOINTSLICES, meta["name"], namespace,
                                         preconditions={"uid": meta["uid"]})
                self.metrics.writes.labels("delete").inc()
            except ApiError as exc:
                if exc.code != 404:
                    raise
            self.tracker.expect_delete(key, meta["name"],
                                       self.slices.store.get_object(meta["name"], namespace) is not None)
        log.info("slices written: %d created, %d updated, %d deleted", len(the_plan.to_create),
                 len(the_plan.to_update), len(the_plan.to_delete), extra={"key": key})

    def _expect(self, key: str, written: Obj) -> None:
        meta = written["metadata"]
        cached = self.slices.store.get_object(meta["name"], meta.get("namespace"))
        seen = None if cached is None else str(cached["metadata"].get("resourceVersion") or "")
        self.tracker.expect_write(key, meta["name"], str(meta.get("resourceVersion") or ""), seen)

    # -- running ------------------------------------------------------------------------
    def pools(self) -> list[WorkerPool]:
        return [WorkerPool(self.queue, self.reconcile, self.workers)]

    async def run(self, *, health_host: str = "127.0.0.1", health_port: int | None = None,
                  stop: Any = None, handle_signals: bool = True,
                  on_ready: Callable[[HealthServer | None], None] | None = None,
                  elector: LeaderElector | None = None) -> None:
        await run_controller(name="endpointslice", informers=self.factory, pools=self.pools(),
                             registry=self.registry, health_host=health_host,
                             health_port=health_port, stop=stop, handle_signals=handle_signals,
                             on_ready=on_ready, elector=elector)
