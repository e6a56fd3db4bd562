"""The node lifecycle controller's informers, handlers and worker.

Keys are node names. A node is checked when it changes (a heartbeat), when a pod on it
turns ready, and again when its grace period would run out (`add_after`), so a silent
node is caught without polling every node all the time.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.controller.health import HealthServer
from kubecore.controller.leaderelection import LeaderElector
from kubecore.controller.run import WorkerPool, run_controller
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key
from kubecore.informer.workqueue import WorkQueue
from services.nodelifecycle.staleness import mark_pod_not_ready, mark_unknown, ready_status, seconds_until_stale

log = logging.getLogger("nodelifecycle")
BY_NODE = "node"
DEFAULT_GRACE = 40.0


def _by_node(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


def _utcnow() -> datetime:
    return datetime.now(UTC)


class NodeLifecycleController:
    def __init__(self, client: ApiClient, *, factory: SharedInformerFactory | None = None,
                 grace: float = DEFAULT_GRACE, workers: int = 2,
                 registry: CollectorRegistry | None = None,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.client = client
        self.factory = factory or SharedInformerFactory(client)
        self.grace = grace
        self.workers = workers
        self.clock = clock
        self.registry = registry or CollectorRegistry()
        self.queue = WorkQueue("nodelifecycle")
        self.nodes_marked = Counter("nodelifecycle_nodes_marked_unknown",
                                    "Nodes set Ready=Unknown after their grace period.",
                                    registry=self.registry)
        self.pods_marked = Counter("nodelifecycle_pods_marked_not_ready",
                                   "Pods set Ready=False because their node is not ready.",
                                   registry=self.registry)
        self.sync_seconds = Histogram("nodelifecycle_reconcile_duration_seconds",
                                      "Time to check one node and its pods.", registry=self.registry)
        self.nodes = self.factory.informer(R.NODES)
        self.pods = self.factory.informer(R.PODS, indexers={BY_NODE: _by_node})
        self.nodes.add_handlers(on_add=self._node_changed,
                                on_update=lambda old, new: self._node_changed(new),
                                on_delete=None)
        self.pods.add_handlers(on_add=self._pod_changed,
                               on_update=lambda old, new: self._pod_changed(new))

    # -- handlers: only enqueue ---------------------------------------------------------
    def _node_changed(self, node: Obj) -> None:
        self.queue.add(object_key(node))

    def _pod_changed(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and ready_status(pod) == "True":
            stored = self.nodes.store.get(node)
            if stored is not None and ready_status(stored) != "True":
                self.queue.add(node)  # a ready pod on a node that is not: take it out

    # -- the worker ---------------------------------------------------------------------
    async def reconcile(self, name: str) -> None:
        started = time.perf_counter()
        try:
            await self._reconcile(name)
        finally:
            self.sync_seconds.observe(time.perf_counter() - started)

    async def _reconcile(self, name: str) -> None:
        node = self.nodes.store.get(name)
        if node is None:
            return
        now = self.clock()
        left = seconds_until_stale(node, now, self.grace)
        if left > 0:
            self.queue.add_after(name, left + 0.05)  # look again when the grace runs out
        else:
            marked = mark_unknown(node, now)
            if marked is not None:
                node = await self.client.update_status(R.NODES, marked)  # CAS: a fresh
                self.nodes_marked.inc()                                 # heartbeat wins
                log.warning("node stopped posting status for %.0fs: Ready=Unknown",
                            self.grace - left, extra={"key": name})
        if ready_status(node) == "True":
            return
        failed: list[str] = []
        for pod in self.pods.store.by_index(BY_NODE, name):
            updated = mark_pod_not_ready(pod, name, now)
            if updated is None:
                continue
            try:
                await self.client.update_status(R.PODS, updated)
            except ApiError as exc:
                if exc.code == 404:
                    continue
                failed.append(f"{object_key(pod)}: {exc.code} {exc.reason}")
                continue
            self.pods_marked.inc()
            log.info("pod marked not ready: node %s is not ready", name,
                     extra={"key": object_key(pod)})
        if failed:
            raise RuntimeError("pods not marked: " + "; ".join(failed))  # retried with backoff

    # -- running ------------------------------------------------------------------------
    def pools(self) -> list[WorkerPool]:
        return [WorkerPool(self.queue, self.reconcile, self.workers)]

    async def run(self, *, health_host: str = "127.0.0.1", health_port: int | None = None,
                  stop: Any = None, handle_signals: bool = True,
                  on_ready: Callable[[HealthServer | None], None] | None = None,
                  elector: LeaderElector | None = None) -> None:
        await run_controller(name="nodelifecycle", informers=self.factory, pools=self.pools(),
                             registry=self.registry, health_host=health_host,
                             health_port=health_port, stop=stop, handle_signals=handle_signals,
                             on_ready=on_ready, elector=elector)
