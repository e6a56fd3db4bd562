"""The garbage collector's informers, handlers and worker.

Every watched kind is both a possible owner and a possible dependent. Stores are indexed
by uid (is this owner still here?) and by owner uid (who depends on this one?). Handlers
only enqueue `plural/namespace/name` keys: a dependent when it appears or its owner
references change, the dependents of an owner when the owner goes, an owner being deleted
with Orphan or Foreground whenever it changes, and such an owner again when one of its
dependents changes its references or goes.

The worker reads the object from its cache. An owner being deleted with Orphan or
Foreground gets that done (`decisions.owner_work`). A dependent is judged by its owners,
looked up by uid in the caches, the API server asked about any the cache lacks (the
owner's watch may simply lag behind the dependent's). Before acting on a dependent the
worker reads it from the API server and judges it again: its cached copy may still carry
a reference an owner's Orphan just removed. The deletion is conditional on that version.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from kubecore.api import propagation as P
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.resources import ResourceType
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.controller.health import HealthServer
from kubecore.controller.leaderelection import LeaderElector
from kubecore.controller.run import WorkerPool, run_controller
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.informer import Informer
from kubecore.informer.store import object_key
from kubecore.informer.workqueue import WorkQueue
from services.gc.decisions import Action, Decision, OwnerState, decide, owner_refs, owner_work

log = logging.getLogger("gc")

# Owners and dependents alike: Deployment -> ReplicaSet -> Pod, Service -> EndpointSlice,
# DaemonSet -> Pod and ControllerRevision;
# CronJob -> Job -> Pod;
# Nodes so that one deleted with Orphan or Foreground loses its finalizer. As kube's
# collector, not Events (too many to cache, owners of nothing); Namespaces are emptied by
# their own deletion.
WATCHED: tuple[ResourceType, ...] = (R.SERVICES, R.DEPLOYMENTS, R.REPLICASETS, R.PODS,
                                     R.ENDPOINTSLICES, R.NODES,
                                     R.STATEFULSETS, R.DAEMONSETS, R.CONTROLLERREVISIONS,
                                     R.JOBS, R.CRONJOBS)
BY_UID = "uid"
BY_OWNER_UID = "owner-uid"


def _uid(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("uid") or ""


def _by_uid(obj: Obj) -> list[str]:
    uid = _uid(obj)
    return [uid] if uid else []


def _by_owner_uid(obj: Obj) -> list[str]:
    return [r["uid"] for r in owner_refs(obj) if r.get("uid")]


def _refs_signature(obj: Obj) -> list[tuple[str, str, bool]]:
    return [(r.get("uid", ""), r.get("kind", ""), r.get("blockOwnerDeletion") is True)
            for r in owner_refs(obj)]


def _owner_to_finish(obj: Obj) -> bool:
    return P.orphaning(obj) or P.deleting_dependents(obj)


def _describe(refs: list[Obj]) -> str:
    return ", ".join(f"{r.get('kind')}/{r.get('name')}" for r in refs)


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
        self.deletions = Counter("gc_deletions", "Dependents deleted because their owners are gone "
                                 "or deleting their dependents.", ["resource"],
                                 registry=self.registry)
        self.refs_dropped = Counter("gc_owner_references_dropped",
                                    "References to deleted owners (or owners deleting their "
                                    "dependents) removed from objects that still have other "
                                    "owners.", ["resource"], registry=self.registry)
        self.orphaned = Counter("gc_orphaned", "Dependents let go (their reference removed) "
                                "because their owner was deleted with Orphan.", ["resource"],
                                registry=self.registry)
        self.finalizers_removed = Counter("gc_finalizers_removed", "orphan and foregroundDeletion "
                                          "finalizers removed once their work was done.",
                                          ["finalizer"], registry=self.registry)
        self.lookups = Counter("gc_owner_lookups", "Owners absent from the cache and asked of "
                               "the API server, by answer.", ["answer"], registry=self.registry)
        self.sync_seconds = Histogram("gc_reconcile_duration_seconds", "Time to check one object.",
                                      registry=self.registry)
        for rt in resources:
            informer = self.factory.informer(rt, indexers={BY_UID: _by_uid,
                                                           BY_OWNER_UID: _by_owner_uid})
            self.informers[rt.plural] = informer
            informer.add_handlers(on_add=self._seen(rt), on_update=self._updated(rt),
                                  on_delete=self._gone)

    # -- handlers: only enqueue ---------------------------------------------------------
    def _key(self, rt: ResourceType, obj: Obj) -> str:
        return f"{rt.plural}/{object_key(obj)}"

    def _seen(self, rt: ResourceType) -> Callable[[Obj], None]:
        def on_add(obj: Obj) -> None:
            if owner_refs(obj) or _owner_to_finish(obj):
                self.queue.add(self._key(rt, obj))
        return on_add

    def _updated(self, rt: ResourceType) -> Callable[[Obj, Obj], None]:
        on_add = self._seen(rt)

        def on_update(old: Obj, new: Obj) -> None:
            if _uid(old) != _uid(new):
                # Deleted and created again under its name while the watch was broken: a
                # relist shows only this change, so the old object's going is seen here.
                self._gone(old)
                on_add(new)
                return
            changed = old is new or _refs_signature(old) != _refs_signature(new)
            if _owner_to_finish(new) or (owner_refs(new) and changed):
                self.queue.add(self._key(rt, new))
            if changed:
                self._enqueue_waiting_owners(old)
        return on_update

    def _gone(self, obj: Obj) -> None:
        uid = _uid(obj)
        if uid:
            for plural, dependent in self._dependents(uid):
                self.queue.add(f"{plural}/{object_key(dependent)}")
        self._enqueue_waiting_owners(obj)

    def _enqueue_waiting_owners(self, dependent: Obj) -> None:
        """Owners deleting their dependents (Foreground) that `dependent` may have held."""
        for ref in owner_refs(dependent):
            rt = R.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
            informer = self.informers.get(rt.plural) if rt is not None else None
            if informer is None or not ref.get("uid"):
                continue
            for owner in informer.store.by_index(BY_UID, ref["uid"]):
                if P.deleting_dependents(owner):
                    self.queue.add(self._key(informer.rt, owner))

    def _dependents(self, uid: str) -> list[tuple[str, Obj]]:
        return [(plural, d) for plural, informer in self.informers.items()
                for d in informer.store.by_index(BY_OWNER_UID, uid)]

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
        if _owner_to_finish(obj):
            await self._finish_owner(informer.rt, obj)
        else:
            await self._collect(informer.rt, obj)

    # -- as an owner deleted with Orphan or Foreground ----------------------------------
    async def _finish_owner(self, rt: ResourceType, owner: Obj) -> None:
        meta = owner["metadata"]
        extra = {"key": object_key(owner), "resource": rt.plural}
        dependents = self._dependents(meta["uid"])
        plural_of = {id(d): plural for plural, d in dependents}
        work = owner_work(owner, [d for _, d in dependents])
        for dependent in work.orphan:
            plural = plural_of[id(dependent)]
            if await self._drop_refs(self.informers[plural].rt, dependent, (meta["uid"],)):
                self.orphaned.labels(plural).inc()
                log.info("orphaned %s/%s", plural, object_key(dependent), extra=extra)
        for dependent in work.look_at:
            self.queue.add(f"{plural_of[id(dependent)]}/{object_key(dependent)}")
        if work.remove_finalizers:
            await self._remove_finalizers(rt, owner, work.remove_finalizers)
            for name in work.remove_finalizers:
                self.finalizers_removed.labels(name).inc()
            log.info("removed finalizers %s", ", ".join(work.remove_finalizers), extra=extra)

    async def _remove_finalizers(self, rt: ResourceType, owner: Obj, names: Sequence[str]) -> None:
        """A merge patch conditional on the version read (the finalizer list is replaced
        whole); on a conflict, read it again and retry, as kube's collector does."""
        meta = owner["metadata"]
        uid, name, namespace = meta["uid"], meta["name"], meta.get("namespace")
        current = owner
        for _ in range(5):
            finalizers = P.finalizers(current)
            left = [f for f in finalizers if f not in names]
            if left == finalizers:
                return
            patch = {"metadata": {"uid": uid, "resourceVersion": current["metadata"]["resourceVersion"],
                                  "finalizers": left or None}}
            try:
                await self.client.patch(rt, name, patch, namespace, patch_type="merge")
                return
            except ApiError as exc:
                if exc.code == 404:
                    return
                if exc.code != 409:
                    raise
            try:
                current = await self.client.get(rt, name, namespace if rt.namespaced else None)
            except ApiError as exc:
                if exc.code == 404:
                    return
                raise
            if current["metadata"].get("uid") != uid:
                return
        raise ApiError(409, "Conflict", f"{rt.plural}/{name}: finalizers changed too often")

    # -- as a dependent -------------------------------------------------------------------
    async def _collect(self, rt: ResourceType, cached: Obj) -> None:
        if (await self._decide(cached)).action is Action.KEEP:
            return
        meta = cached["metadata"]
        namespace = meta.get("namespace")
        try:
            live = await self.client.get(rt, meta["name"], namespace)
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        if live["metadata"].get("uid") != meta["uid"]:
            return
        decision = await self._decide(live)
        extra = {"key": object_key(live), "resource": rt.plural}
        if decision.action is Action.DELETE:
            try:
                await self.client.delete(rt, meta["name"], namespace, preconditions={
                    "uid": meta["uid"], "resourceVersion": live["metadata"]["resourceVersion"]},
                    propagation_policy=decision.policy)
            except ApiError as exc:
                if exc.code == 404:
                    return
                raise  # 409: it changed since it was read; judge it again
            self.deletions.labels(rt.plural).inc()
            log.info("deleted (%s): its owners are gone or deleting their dependents (%s)",
                     decision.policy, _describe(owner_refs(live)), extra=extra)
        elif decision.action is Action.DROP_REFS:
            if await self._drop_refs(rt, live, decision.drop):
                self.refs_dropped.labels(rt.plural).inc()
                log.info("dropped owner references to deleted owners", extra=extra)

    async def _decide(self, obj: Obj) -> Decision:
        meta = obj["metadata"]
        states: dict[str, OwnerState] = {}
        for ref in owner_refs(obj):
            states[ref.get("uid", "")] = await self._owner_state(ref, meta.get("namespace"))
        has_dependents = bool(self._dependents(meta.get("uid", "")))
        return decide(obj, lambda ref: states[ref.get("uid", "")], has_dependents=has_dependents)

    async def _drop_refs(self, rt: ResourceType, obj: Obj, uids: Sequence[str]) -> bool:
        """Remove the references to these owners by uid (a strategic merge patch: what
        others add meanwhile stays); False when the object is gone or replaced."""
        meta = obj["metadata"]
        patch = {"metadata": {"uid": meta["uid"], "ownerReferences": [
            {"$patch": "delete", "uid": uid} for uid in uids]}}
        try:
            await self.client.patch(rt, meta["name"], patch, meta.get("namespace"),
                                    patch_type="strategic")
        except ApiError as exc:
            if exc.code in (404, 409):  # gone, or another object by now
                return False
            raise
        return True

    async def _owner_state(self, ref: Obj, namespace: str | None) -> OwnerState:
        rt = R.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if rt is None or not ref.get("uid") or not ref.get("name"):
            return OwnerState.UNKNOWN
        if rt.namespaced and not namespace:
            # A cluster-scoped object cannot be owned by a namespaced one: the reference
            # resolves to nothing either way, and the object is left alone (kube's
            # collector does the same) rather than deleted on a guess.
            return OwnerState.UNKNOWN
        informer = self.informers.get(rt.plural)
        cached = informer.store.by_index(BY_UID, ref["uid"]) if informer is not None else []
        # References do not cross namespaces: a namespaced owner is the one of that name in
        # the dependent's namespace (one of that uid elsewhere is not it).
        cached = [o for o in cached if not rt.namespaced
                  or (o.get("metadata") or {}).get("namespace") == namespace]
        if cached:
            return _present(cached[0])
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
        return _present(live)

    # -- running ------------------------------------------------------------------------
    def pools(self) -> list[WorkerPool]:
        return [WorkerPool(self.queue, self.reconcile, self.workers)]

    async def run(self, *, health_host: str = "127.0.0.1", health_port: int | None = None,
                  stop: Any = None, handle_signals: bool = True,
                  on_ready: Callable[[HealthServer | None], None] | None = None,
                  elector: LeaderElector | None = None) -> None:
        await run_controller(name="gc", informers=self.factory, pools=self.pools(),
                             registry=self.registry, health_host=health_host,
                             health_port=health_port, stop=stop, handle_signals=handle_signals,
                             on_ready=on_ready, elector=elector)


def _present(owner: Obj) -> OwnerState:
    return OwnerState.DELETING_DEPENDENTS if P.deleting_dependents(owner) else OwnerState.PRESENT
