"""The load-balancer controller's informer, handler and worker.

Keys are `namespace/name` of Services. One worker: the assignments (which Service holds
which pool address) are this process's bookkeeping, recovered from the Services' status
when the cache has synced, and a single writer keeps two Services from being handed the
same address between a status write and its echo in the cache. A status write that meets a
newer Service (409) fails the key, which the queue retries with backoff against the cache's
newer copy.
"""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.events import NORMAL, WARNING, EventRecorder
from kubecore.client.rest import ApiClient
from kubecore.controller.health import HealthServer
from kubecore.controller.leaderelection import LeaderElector
from kubecore.controller.run import WorkerPool, queue_handlers, run_controller
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.workqueue import WorkQueue
from services.loadbalancer.pool import Pool, decide, is_ours, recover, status_for

log = logging.getLogger("loadbalancer")
COMPONENT = "service-controller"


class LoadBalancerController:
    def __init__(self, client: ApiClient, *, pool: Pool, lb_class: str | None = None,
                 factory: SharedInformerFactory | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.client = client
        self.pool = pool
        self.lb_class = lb_class
        self.factory = factory or SharedInformerFactory(client)
        self.registry = registry or CollectorRegistry()
        self.queue = WorkQueue("loadbalancer")
        self.events = EventRecorder(client, COMPONENT)
        self.assigned: dict[str, str] | None = None  # recovered on the first key
        self.writes = Counter("loadbalancer_status_writes", "Service status writes.",
                              registry=self.registry)
        self.in_use = Gauge("loadbalancer_pool_addresses_in_use", "Pool addresses held by Services.",
                            registry=self.registry)
        self.sync_seconds = Histogram("loadbalancer_sync_duration_seconds", "Time to sync one Service.",
                                      registry=self.registry)
        self.services = self.factory.informer(R.SERVICES)
        self.services.add_handlers(**queue_handlers(self.queue))

    def _assignments(self) -> dict[str, str]:
        if self.assigned is None:  # the cache has synced before the first key is worked
            self.assigned = recover(self.services.store.list(), self.pool, self.lb_class)
            log.info("recovered %d assignments from the pool %s", len(self.assigned), self.pool)
        return self.assigned

    async def reconcile(self, key: str) -> None:
        started = time.perf_counter()
        try:
            await self._reconcile(key)
        finally:
            self.in_use.set(len(self.assigned or {}))
            self.sync_seconds.observe(time.perf_counter() - started)

    async def _reconcile(self, key: str) -> None:
        assigned = self._assignments()
        svc = self.services.store.get(key)
        if svc is None or not is_ours(svc, self.lb_class):
            # gone, or no longer a LoadBalancer (the API server cleared its status)
            if assigned.pop(key, None) is not None:
                log.info("released its address", extra={"key": key})
            return
        taken = {ip for other, ip in assigned.items() if other != key}
        decision = decide(svc, self.pool, taken, self.lb_class)
        if decision.ip is None:
            assigned.pop(key, None)
        else:
            assigned[key] = decision.ip
        status = status_for(svc, decision.ip)
        if status is not None:
            await self._write_status(svc, status, key)
            if decision.ip:
                self.events.event(svc, NORMAL, "IPAllocated", f'Assigned IP ["{decision.ip}"]')
        if decision.problem:
            log.warning("%s", decision.problem, extra={"key": key})
            self.events.event(svc, WARNING, "AllocationFailed", decision.problem)

    async def _write_status(self, svc: dict[str, Any], status: dict[str, Any], key: str) -> None:
        updated = copy.deepcopy(svc)
        updated["status"] = status
        try:
            await self.client.update_status(R.SERVICES, updated)  # CAS on resourceVersion
        except ApiError as exc:
            if exc.code == 404:
                return
            raise  # a conflict: retried with the cache's newer copy
        self.writes.inc()
        log.info("status written: %s", status.get("loadBalancer"), extra={"key": key})

    # -- running ------------------------------------------------------------------------
    def pools(self) -> list[WorkerPool]:
        return [WorkerPool(self.queue, self.reconcile, 1)]

    async def run(self, *, health_host: str = "127.0.0.1", health_port: int | None = None,
                  stop: Any = None, handle_signals: bool = True,
                  on_ready: Callable[[HealthServer | None], None] | None = None,
                  elector: LeaderElector | None = None) -> None:
        await run_controller(name="loadbalancer", informers=self.factory, pools=self.pools(),
                             registry=self.registry, health_host=health_host,
                             health_port=health_port, stop=stop, handle_signals=handle_signals,
                             on_ready=on_ready, elector=elector)
