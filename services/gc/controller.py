"""The garbage collector's informers, handlers and worker.

Every watched kind is both a possible owner and a possible dependent. Stores are indexed
by uid (is this owner still here?) and by owner uid (who depends on this one?). Handlers
only enqueue `plural/namespace/name` keys: a dependent when it appears or its owner
references change, the dependents of an owner when the owner goes. The worker reads the
dependent from its cache, looks each owner up by uid in the caches, and asks the API
server about any owner the cache lacks before acting (the owner's watch may simply lag
behind the dependent's).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram

from kubecore import resources as R
from kubecore.client import ApiClient
from kubecore.controller import HealthServer, WorkerPool, run_controller
from kubecore.errors import ApiError
from kubecore.informer import Informer, SharedInformerFactory, object_key
from kubecore.resources import ResourceType
from kubecore.workqueue import WorkQueue
from services.gc.ownership import Action, OwnerState, decide, owner_refs

log = logging.getLogger("gc")
Obj = dict[str, Any]

# Owners and dependents alike: Deployment -> ReplicaSet -> Pod, Service -> EndpointSlice.
WATCHED: tuple[ResourceType, ...] = (R.SERVICES, R.DEPLOYMENTS, R.REPLICASETS, R.PODS,
                                     R.ENDPOINTSLICES)
BY_UID = "uid"
BY_OWNER_UID = "owner-uid"


def _by_uid(obj: Obj) -> list[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [uid] if uid else []


def _by_owner_uid(obj: Obj) -> list[str]:
    return [r["uid"] for r in owner_refs(obj) if r.get("uid")]


def _refs_signature(obj: Obj) -> list[tuple[str, str]]:
    return [(r.get("uid", ""), r.get("kind", "")) for r in owner_refs(obj)]


class GarbageCollector:
    def __init__(self, client: ApiClient, *, factory: SharedInformerFactory | None = None,
                 resources: Sequence[ResourceType] = WATCHED, workers: int = 4,
                 registry: CollectorRegistry | None = None) -> None:
        self.client = client
        self.factory = factory or SharedInformerFactory(client)
        self.workers = workers
        self.registry = registry or CollectorRegistry()
        self.queue = WorkQueue("gc")
        self.informers: dict[str, Informer] = {}
        self.deletions = Counter("gc_deletions", "Dependents deleted because their owners are gone.",
                                 ["resource"], registry=self.registry)
        self.refs_dropped = Counter("gc_owner_references_dropped",
                                    "Dangling owner references removed from objects that still "
                                    "have other owners.", ["resource"], registry=self.registry)
        self.lookups = Counter("gc_owner_lookups", "Owners absent from the cache and asked of "
                               "the API server, by answer.", ["answer"], registry=self.registry)
        self.sync_seconds = Histogram("gc_reconcile_duration_seconds", "Time to check one object.",
                                      registry=self.registry)
        for rt in resources:
            informer = self.factory.informer(rt, indexers={BY_UID: _by_uid,
                                                           BY_OWNER_UID: _by_owner_uid})
            self.informers[rt.plural] = informer
            informer.add_handlers(on_add=self._dependent_seen(rt),
                                  on_update=self._dependent_updated(rt),
                                  on_delete=self._owner_gone)

    # -- handlers: only enqueue ---------------------------------------------------------
    def _key(self, rt: ResourceType, obj: Obj) -> str:
        return f"{rt.plural}/{object_key(obj)}"

    def _dependent_seen(self, rt: ResourceType) -> Callable[[Obj], None]:
        def on_add(obj: Obj) -> None:
            if owner_refs(obj):
                self.queue.add(self._key(rt, obj))
        return on_add

    def _dependent_updated(self, rt: ResourceType) -> Callable[[Obj, Obj], None]:
        def on_update(old: Obj, new: Obj) -> None:
            if owner_refs(new) and (old is new or _refs_signature(old) != _refs_signature(new)):
                self.queue.add(self._key(rt, new))
        return on_update

    def _owner_gone(self, owner: Obj) -> None:
        uid = (owner.get("metadata") or {}).get("uid")
        if not uid:
            return
        for plural, informer in self.informers.items():
            for dependent in informer.store.by_index(BY_OWNER_UID, uid):
                self.queue.add(f"{plural}/{object_key(dependent)}")

    # -- the worker ---------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        started = time.perf_counter()
        try:
            await self._reconcile(key)
        finally:
            self.sync_seconds.observe(time.perf_counter() - started)

    async def _reconcile(self, key: str) -> None:
        plural, _, obj_key = key.partition("/")
        informer = self.informers[plural]
        obj = informer.store.get(obj_key)
        if obj is None:
            return
        meta = obj["metadata"]
        namespace = meta.get("namespace")
        states: dict[str, OwnerState] = {}
        for ref in owner_refs(obj):
            states[ref.get("uid", "")] = await self._owner_state(ref, namespace)
        decision = decide(obj, lambda ref: states[ref.get("uid", "")])
        extra = {"key": obj_key, "resource": plural}
        if decision.action is Action.DELETE:
            try:
                await self.client.delete(informer.rt, meta["name"], namespace,
                                         preconditions={"uid": meta["uid"]})
            except ApiError as exc:
                if exc.code in (404, 409):  # gone already, or another object by now
                    return
                raise
            self.deletions.labels(plural).inc()
            log.info("deleted: its owners are gone (%s)",
                     ", ".join(f"{r.get('kind')}/{r.get('name')}" for r in owner_refs(obj)),
                     extra=extra)
        elif decision.action is Action.DROP_DANGLING:
            patch = [{"op": "test", "path": "/metadata/uid", "value": meta["uid"]},
                     {"op": "test", "path": "/metadata/resourceVersion",
                      "value": meta["resourceVersion"]},
                     {"op": "replace", "path": "/metadata/ownerReferences",
                      "value": list(decision.remaining)}]
            await self.client.patch(informer.rt, meta["name"], patch, namespace, patch_type="json")
            self.refs_dropped.labels(plural).inc()
            log.info("dropped owner references to deleted owners", extra=extra)

    async def _owner_state(self, ref: Obj, namespace: str | None) -> OwnerState:
        rt = R.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if rt is None or not ref.get("uid") or not ref.get("name"):
            return OwnerState.UNKNOWN
        informer = self.informers.get(rt.plural)
        if informer is not None and informer.store.index_keys(BY_UID, ref["uid"]):
            return OwnerState.PRESENT
        # Not in the cache: gone, or the cache has not seen it yet. Ask.
        try:
            live = await self.client.get(rt, ref["name"], namespace if rt.namespaced else None)
        except ApiError as exc:
            if exc.code == 404:
                self.lookups.labels("absent").inc()
                return OwnerState.ABSENT
            raise
        if (live.get("metadata") or {}).get("uid") != ref["uid"]:
            self.lookups.labels("replaced").inc()
            return OwnerState.ABSENT
        self.lookups.labels("present").inc()
        return OwnerState.PRESENT

    # -- running ------------------------------------------------------------------------
    def pools(self) -> list[WorkerPool]:
        return [WorkerPool(self.queue, self.reconcile, self.workers)]

    async def run(self, *, health_host: str = "127.0.0.1", health_port: int | None = None,
                  stop: Any = None, handle_signals: bool = True,
                  on_ready: Callable[[HealthServer | None], None] | None = None) -> None:
        await run_controller(name="gc", informers=self.factory, pools=self.pools(),
                             registry=self.registry, health_host=health_host,
                             health_port=health_port, stop=stop, handle_signals=handle_signals,
                             on_ready=on_ready)
