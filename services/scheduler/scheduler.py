"""The scheduler's controller: informers on pods and nodes, one queue of pod keys.

Handlers only enqueue keys. A worker re-reads the pod from the cache, asks `plan.choose_node`
and either binds (pods/binding) or records why nothing fits (PodScheduled=False on the pod's
status). Pods that did not fit are kept in a set and re-queued whenever a node is added or
changes (a node turning Ready is what they wait for), and once a minute besides.

Events as kube-scheduler's: `Scheduled` on the pod once bound, `FailedScheduling` (Warning)
with the same words as the PodScheduled condition when nothing fits.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as MetricCounter

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.events import NORMAL, WARNING, EventRecorder
from kubecore.client.rest import ApiClient, ApiUnavailable
from kubecore.controller.run import WorkerPool, run_controller
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key, split_key
from kubecore.informer.workqueue import WorkQueue
from services.scheduler import plan
from services.scheduler.assumed_pods import AssumedPods

log = logging.getLogger("scheduler")
NODE_INDEX = "node"
UNSCHEDULABLE_RETRY_SECONDS = 60.0


def _node_index(pod: Obj) -> list[str]:
    node = plan.assigned_node(pod)
    return [node] if node else []


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Scheduler:
    def __init__(self, client: ApiClient, factory: SharedInformerFactory, *,
                 scheduler_name: str = plan.DEFAULT_SCHEDULER, workers: int = 16,
                 registry: CollectorRegistry | None = None) -> None:
        self.client = client
        self.factory = factory
        self.scheduler_name = scheduler_name
        self.registry = registry or CollectorRegistry()
        self.pods = factory.informer(R.PODS, indexers={NODE_INDEX: _node_index})
        self.nodes = factory.informer(R.NODES)
        self.queue = WorkQueue("scheduler")
        self.pool = WorkerPool(self.queue, self.schedule, workers)
        self.assumed = AssumedPods()
        self.unschedulable: set[str] = set()
        self.events = EventRecorder(client, scheduler_name)
        self.failures_reported: dict[str, tuple[str, float]] = {}  # key -> (message, monotonic)
        self.attempts = MetricCounter("scheduler_schedule_attempts", "Scheduling attempts by result.",
                                      ["result"], registry=self.registry)
        self.binding_seconds = Histogram("scheduler_binding_duration_seconds",
                                         "Time of the binding request.", registry=self.registry)
        self.pods.add_handlers(on_add=self._pod_changed,
                               on_update=lambda old, new: self._pod_changed(new),
                               on_delete=self._pod_deleted)
        self.nodes.add_handlers(on_add=self._node_changed,
                                on_update=lambda old, new: self._node_changed(new))

    # -- handlers: enqueue, and keep the assumed cache honest ---------------------------
    def _pod_changed(self, pod: Obj) -> None:
        key = object_key(pod)
        if (pod.get("spec") or {}).get("nodeName"):
            self.assumed.forget(key)  # the informer counts it on its node from now on
            self.unschedulable.discard(key)
            self.failures_reported.pop(key, None)
            return
        if plan.pod_needs_scheduling(pod, self.scheduler_name):
            self.queue.add(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = object_key(pod)
        self.assumed.forget(key)
        self.unschedulable.discard(key)
        self.failures_reported.pop(key, None)

    def _node_changed(self, node: Obj) -> None:
        for key in list(self.unschedulable):
            self.queue.add(key)

    # -- reading -------------------------------------------------------------------------
    def pod_counts(self) -> Counter[str]:
        counts = self.assumed.counts()
        store = self.pods.store
        for node in store.index_values(NODE_INDEX):
            counts[node] += len(store.index_keys(NODE_INDEX, node))
        return counts

    # -- the reconcile -------------------------------------------------------------------
    async def schedule(self, key: str) -> None:
        pod = self.pods.store.get(key)
        if pod is None or key in self.assumed or not plan.pod_needs_scheduling(
                pod, self.scheduler_name):
            return
        nodes = self.nodes.store.list()
        node, reasons = plan.choose_node(pod, nodes, self.pod_counts())
        if node is None:
            self.attempts.labels("unschedulable").inc()
            self.unschedulable.add(key)
            self.queue.add_after(key, UNSCHEDULABLE_RETRY_SECONDS)
            message = plan.unschedulable_message(len(nodes), reasons)
            self._report_failure(key, pod, message)
            await self._record_unschedulable(key, pod, message)
            return
        self.unschedulable.discard(key)
        node_name = node["metadata"]["name"]
        namespace, name = split_key(key)
        self.assumed.assume(key, node_name)  # counted before the await: see assumed_pods.py
        started = time.monotonic()
        try:
            await self.client.bind(namespace or "default", name, node_name)
        except ApiError as exc:
            self.assumed.forget(key)
            if exc.code in (404, 409):  # gone, being deleted, or bound meanwhile
                log.info("not binding %s: %s", key, exc.message, extra={"key": key})
                return
            self.attempts.labels("error").inc()
            raise
        except ApiUnavailable:
            self.assumed.forget(key)
            self.attempts.labels("error").inc()
            raise
        self.binding_seconds.observe(time.monotonic() - started)
        self.attempts.labels("scheduled").inc()
        self.events.event(pod, NORMAL, "Scheduled",
                          f"Successfully assigned {namespace or 'default'}/{name} to {node_name}")
        log.debug("bound %s to %s", key, node_name, extra={"key": key, "node": node_name})

    def _report_failure(self, key: str, pod: Obj, message: str) -> None:
        now = time.monotonic()
        if plan.failure_worth_an_event(self.failures_reported.get(key), message, now,
                                       UNSCHEDULABLE_RETRY_SECONDS):
            self.failures_reported[key] = (message, now)
            self.events.event(pod, WARNING, "FailedScheduling", message)

    async def _record_unschedulable(self, key: str, pod: Obj, message: str) -> None:
        if not plan.needs_condition_update(pod, message):
            return  # already says so (often the echo of our own write)
        namespace, name = split_key(key)
        log.info("unschedulable %s: %s", key, message, extra={"key": key})
        patch = {"status": {"conditions": [plan.unschedulable_condition(message, _now())]}}
        try:
            await self.client.patch(R.PODS, name, patch, namespace, patch_type="strategic",
                                    subresource="status")
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def run(self, *, health_port: int | None = None, **kwargs: Any) -> None:
        try:
            await run_controller(name="scheduler", informers=self.factory, pools=[self.pool],
                                 registry=self.registry, health_port=health_port, **kwargs)
        finally:
            await self.events.close()
