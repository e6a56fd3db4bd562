"""The endpoints controller: the core/v1 Endpoints of every Service with a selector, kept
from its pods (kube-controller-manager's `endpoint-controller`), in the endpointslice
process and over its informers.

Handlers only enqueue Service keys: a Service event its own key; a pod event the Services
of its namespace whose selector matched the pod before or after; an Endpoints event its
key, unless it is the echo of this controller's own write (`tracker.WriteTracker`, so a
cache that lags behind our writes never makes us write twice or conflict). The worker
plans with `endpoints_plan.plan_endpoints` and carries out the one write.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.controller.run import WorkerPool
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key, split_key
from kubecore.informer.workqueue import WorkQueue
from services.endpointslice.controller import BY_NAMESPACE, by_namespace
from services.endpointslice.endpoints import pod_is_ready, selector_matches, service_selector
from services.endpointslice.endpoints_plan import EndpointsWrite, plan_endpoints
from services.endpointslice.tracker import WriteTracker
from services.endpointslice.triggertime import TriggerTimeTracker

log = logging.getLogger("endpoints")


def _pod_facts(pod: Obj) -> tuple[Any, ...]:
    """What of a pod shows in an Endpoints address or decides which Services select it."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    return (meta.get("labels"), meta.get("deletionTimestamp"), status.get("podIP"),
            status.get("podIPs"), status.get("phase"), pod_is_ready(pod), spec.get("nodeName"),
            spec.get("hostname"), spec.get("subdomain"), spec.get("containers"))


class EndpointsController:
    def __init__(self, client: ApiClient, factory: SharedInformerFactory, *, workers: int = 4,
                 echo_ttl: float = 15.0) -> None:
        self.client = client
        self.factory = factory
        self.workers = workers
        self.queue = WorkQueue("endpoint")
        self.tracker = WriteTracker(ttl=echo_ttl)
        self.trigger_times = TriggerTimeTracker()
        self.services = factory.informer(R.SERVICES, indexers={BY_NAMESPACE: by_namespace})
        self.pods = factory.informer(R.PODS, indexers={BY_NAMESPACE: by_namespace})
        self.endpoints = factory.informer(R.ENDPOINTS)
        self.services.add_handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new),
                                   on_delete=self._enqueue)
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated,
                               on_delete=self._pod_added)
        self.endpoints.add_handlers(on_add=self._endpoints_changed,
                                    on_update=lambda old, new: self._endpoints_changed(new),
                                    on_delete=self._endpoints_deleted)

    # -- handlers: only enqueue -------------------------------------------------------
    def _enqueue(self, obj: Obj) -> None:
        self.queue.add(object_key(obj))

    def _services_selecting(self, namespace: str, labels: Iterable[dict[str, str] | None]) -> set[str]:
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
        if old is not new and _pod_facts(old) == _pod_facts(new):
            return
        labels = [(old.get("metadata") or {}).get("labels"), (new.get("metadata") or {}).get("labels")]
        for key in self._services_selecting((new.get("metadata") or {}).get("namespace", ""), labels):
            self.queue.add(key)

    def _endpoints_changed(self, endpoints: Obj) -> None:
        """As kube's: Endpoints found by the first list are checked (leftovers of deleted
        Services go); later adds and updates only settle our own writes' echoes (others'
        Endpoints are theirs until a Service or pod event says otherwise)."""
        key, meta = object_key(endpoints), endpoints.get("metadata") or {}
        expecting = self.tracker.expecting(key)
        echo = self.tracker.observe(key, str(meta.get("name")), str(meta.get("resourceVersion") or ""))
        if not self.endpoints.has_synced() or (expecting and not echo):
            self.queue.add(key)

    def _endpoints_deleted(self, endpoints: Obj) -> None:
        key = object_key(endpoints)
        if not self.tracker.observe(key, str((endpoints.get("metadata") or {}).get("name")), None):
            self.queue.add(key)

    # -- the worker ---------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        if self.tracker.waiting(key):
            self.queue.add_after(key, self.tracker.time_left(key) + 0.01)
            return
        namespace, _ = split_key(key)
        service = self.services.store.get(key)
        current = self.endpoints.store.get(key)
        trigger_time = None
        pods: list[Obj] = []
        if service is None:
            self.trigger_times.forget(key)
        elif service_selector(service) is not None:
            selector = service_selector(service) or {}
            pods = [p for p in self.pods.store.by_index(BY_NAMESPACE, namespace or "")
                    if selector_matches(selector, (p.get("metadata") or {}).get("labels"))]
            trigger_time = self.trigger_times.compute(key, service, pods)
        write = plan_endpoints(service, pods, current, trigger_time=trigger_time)
        await self.apply(key, write)

    async def apply(self, key: str, write: EndpointsWrite) -> None:
        namespace, name = split_key(key)
        if write.action == "none" or write.endpoints is None:
            return
        if write.action == "delete":
            try:
                await self.client.delete(R.ENDPOINTS, name, namespace)
            except ApiError as exc:
                if exc.code != 404:
                    raise
            self.tracker.expect_delete(key, name, key in self.endpoints.store)
        elif write.action == "create":
            self._expect(key, await self.client.create(R.ENDPOINTS, write.endpoints, namespace))
        else:
            self._expect(key, await self.client.replace(R.ENDPOINTS, write.endpoints))
        log.info("endpoints %sd", write.action.rstrip("e"), extra={"key": key})

    def _expect(self, key: str, written: Obj) -> None:
        meta = written["metadata"]
        cached = self.endpoints.store.get(key)
        seen = None if cached is None else str(cached["metadata"].get("resourceVersion") or "")
        self.tracker.expect_write(key, meta["name"], str(meta.get("resourceVersion") or ""), seen)

    def pools(self) -> list[WorkerPool]:
        return [WorkerPool(self.queue, self.reconcile, self.workers)]
