"""The StatefulSet controller: informers on StatefulSets, their pods and ControllerRevisions,
one work queue of set keys, and the API writes `plan` and `revisions` decide.

Handlers only enqueue the owning set's key (an orphan pod or revision: every set whose
selector matches it). A sync re-reads the set from the cache and:

1. claims its ControllerRevisions and pods (`ownership`; before the first adoption it reads
   the set from the API server, as kube's canAdopt does);
2. settles the revisions (`revisions.choose_revisions`): creates the update revision (on a
   name collision with a different revision it counts a collision and tries the next name,
   as kube's CreateControllerRevision does), or renumbers an older equal one (a rollback);
3. carries out `plan.plan_sync`: creates, relabels and deletes pods, each with the Event
   kube's StatefulPodControl posts ("create Pod web-0 in StatefulSet web successful");
4. writes the status if it changed, and trims the history to revisionHistoryLimit.

No expectations are kept, as in kube: pod names are fixed, so a sync on a stale cache can at
worst try to create a pod that exists (409, ignored: its watch event brings the next sync).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.selectors import labels_match, selector_from_label_selector
from kubecore.api.types import Obj, nested
from kubecore.client.events import NORMAL, WARNING, EventRecorder
from kubecore.client.rest import ApiClient
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key, split_key
from kubecore.informer.workqueue import WorkQueue
from services.statefulset import identity as ident
from services.statefulset import ownership as own
from services.statefulset import plan as P
from services.statefulset import revisions as rv

log = logging.getLogger("statefulset")
NAMESPACE_INDEX = "namespace"
MAX_COLLISIONS = 100


def by_namespace(obj: Obj) -> list[str]:
    return [nested(obj, "metadata", "namespace") or ""]


def _why(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ApiError) else str(exc) or type(exc).__name__


class StatefulSetController:
    def __init__(self, client: ApiClient, factory: SharedInformerFactory, *,
                 registry: CollectorRegistry) -> None:
        self.client = client
        self.sets = factory.informer(R.STATEFULSETS, indexers={NAMESPACE_INDEX: by_namespace})
        self.pods = factory.informer(R.PODS, indexers={NAMESPACE_INDEX: by_namespace})
        self.revisions = factory.informer(R.CONTROLLERREVISIONS,
                                          indexers={NAMESPACE_INDEX: by_namespace})
        self.queue = WorkQueue("statefulset")
        self.events = EventRecorder(client, "statefulset-controller")
        self.created = Counter("statefulset_pods_created", "Pods created by the StatefulSet "
                               "controller.", registry=registry)
        self.deleted = Counter("statefulset_pods_deleted", "Pods deleted by the StatefulSet "
                               "controller.", registry=registry)
        self.sets.add_handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new),
                               on_delete=self._enqueue)
        for informer in (self.pods, self.revisions):
            informer.add_handlers(on_add=self._dependent_changed, on_update=self._dependent_updated,
                                  on_delete=self._dependent_changed)

    # -- handlers: only enqueue ---------------------------------------------------------------
    def _enqueue(self, sts: Obj) -> None:
        self.queue.add(object_key(sts))

    def _owner_key(self, obj: Obj) -> str | None:
        ref = own.controller_ref(obj)
        if ref is None or ref.get("kind") != "StatefulSet":
            return None
        sts = self.sets.store.get_object(ref.get("name", ""), nested(obj, "metadata", "namespace"))
        if sts is None or nested(sts, "metadata", "uid") != ref.get("uid"):
            return None
        return object_key(sts)

    def _dependent_changed(self, obj: Obj) -> None:
        key = self._owner_key(obj)
        if key is not None:
            self.queue.add(key)
        elif own.controller_ref(obj) is None:
            labels = nested(obj, "metadata", "labels") or {}
            for sts in self.sets.store.by_index(NAMESPACE_INDEX, nested(obj, "metadata", "namespace") or ""):
                selector = selector_from_label_selector(nested(sts, "spec", "selector"))
                if selector and labels_match(selector, labels):
                    self.queue.add(object_key(sts))

    def _dependent_updated(self, old: Obj, new: Obj) -> None:
        old_key = self._owner_key(old)
        if old_key is not None and old_key != self._owner_key(new):
            self.queue.add(old_key)
        self._dependent_changed(new)

    # -- the reconcile ------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        sts = self.sets.store.get(key)
        if sts is None:
            return
        namespace, _ = split_key(key)
        selector = selector_from_label_selector(nested(sts, "spec", "selector"))
        rev_claim = own.claim(sts, self.revisions.store.by_index(NAMESPACE_INDEX, namespace or ""),
                              selector)
        pod_claim = own.claim(sts, self.pods.store.by_index(NAMESPACE_INDEX, namespace or ""),
                              selector, lambda pod: ident.is_member_of(sts, pod))
        if rev_claim.adopt or pod_claim.adopt:
            await self._refuse_stale_adoption(sts, rev_claim, pod_claim)
        revisions = await self._adopt_and_release(R.CONTROLLERREVISIONS, sts, rev_claim)
        pods = await self._adopt_and_release(R.PODS, sts, pod_claim)
        revs, current, update = await self._settle_revisions(sts, revisions)
        plan = P.plan_sync(sts, pods, revs, datetime.now(UTC))
        try:
            await self._carry_out(sts, plan)
        finally:
            await self._update_status(sts, plan.status)
            await self._trim_history(sts, revisions, pods, current, update)
        min_ready = P.min_ready_seconds(sts)
        if min_ready and plan.status["availableReplicas"] != ident.replica_count(sts):
            self.queue.add_after(key, min_ready + 0.5)

    async def _refuse_stale_adoption(self, sts: Obj, *claims: own.Claim) -> None:
        """kube's canAdopt: the set as the API server has it now must be this one, not being
        deleted; otherwise a lagging cache would take back what an Orphan deletion let go."""
        meta = sts["metadata"]
        try:
            fresh = (await self.client.get(R.STATEFULSETS, meta["name"], meta.get("namespace")))["metadata"]
        except ApiError as exc:
            if exc.code != 404:
                raise
            fresh = None
        if fresh is None or fresh.get("uid") != meta.get("uid") or fresh.get("deletionTimestamp"):
            for c in claims:
                adopted = {object_key(o) for o in c.adopt}
                c.owned = [o for o in c.owned if object_key(o) not in adopted]
                c.adopt = []

    async def _adopt_and_release(self, rt: R.ResourceType, sts: Obj, claim: own.Claim) -> list[Obj]:
        failed: set[str] = set()
        for obj in claim.adopt:
            meta = obj["metadata"]
            try:
                await self.client.patch(rt, meta["name"], own.adoption_patch(sts, obj), meta.get("namespace"))
                log.info("adopted %s %s", rt.singular, object_key(obj), extra={"key": object_key(sts)})
            except ApiError as exc:
                if exc.code not in (404, 409, 422):
                    raise
                failed.add(object_key(obj))
        for obj in claim.release:
            meta = obj["metadata"]
            try:
                await self.client.patch(rt, meta["name"], own.release_patch(sts, obj), meta.get("namespace"))
                log.info("released %s %s", rt.singular, object_key(obj), extra={"key": object_key(sts)})
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return [o for o in claim.owned if object_key(o) not in failed]

    async def _settle_revisions(self, sts: Obj, revisions: list[Obj]) -> tuple[P.Revisions, Obj, Obj]:
        choice = rv.choose_revisions(sts, revisions)
        collisions = int(nested(sts, "status", "collisionCount") or 0)
        update = choice.update
        if choice.create:
            update, collisions = await self._create_revision(sts, update, collisions)
        elif choice.renumber_to is not None:
            meta = update["metadata"]
            update = await self.client.patch(R.CONTROLLERREVISIONS, meta["name"],
                                             {"revision": choice.renumber_to}, meta.get("namespace"))
        current = choice.current or update
        revs = P.Revisions(current=current["metadata"]["name"], update=update["metadata"]["name"],
                           current_template=rv.template_of(current),
                           update_template=rv.template_of(update), collision_count=collisions)
        return revs, current, update

    async def _create_revision(self, sts: Obj, candidate: Obj, collisions: int) -> tuple[Obj, int]:
        namespace = sts["metadata"].get("namespace")
        for _ in range(MAX_COLLISIONS):
            try:
                return await self.client.create(R.CONTROLLERREVISIONS, candidate, namespace), collisions
            except ApiError as exc:
                if exc.code != 409 or exc.reason != "AlreadyExists":
                    raise
            existing = await self.client.get(R.CONTROLLERREVISIONS, candidate["metadata"]["name"], namespace)
            if rv.equal_revision(existing, candidate):
                return existing, collisions
            collisions += 1
            candidate = rv.new_revision(sts, candidate["revision"], collisions)
        raise RuntimeError(f"no free ControllerRevision name after {MAX_COLLISIONS} collisions")

    # -- pods ---------------------------------------------------------------------------------
    async def _carry_out(self, sts: Obj, plan: P.Plan) -> None:
        results = await asyncio.gather(*(self._create_pod(sts, p) for p in plan.create),
                                       *(self._relabel_pod(sts, p) for p in plan.relabel),
                                       *(self._delete_pod(sts, p, why) for p, why in plan.delete),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    def _pod_event(self, verb: str, sts: Obj, pod: Obj, error: BaseException | None) -> None:
        """kube's recordPodEvent, in its words."""
        name, set_name = pod["metadata"]["name"], sts["metadata"]["name"]
        if error is None:
            self.events.event(sts, NORMAL, f"Successful{verb.title()}",
                              f"{verb} Pod {name} in StatefulSet {set_name} successful")
        else:
            self.events.event(sts, WARNING, f"Failed{verb.title()}",
                              f"{verb} Pod {name} in StatefulSet {set_name} failed error: {_why(error)}")

    async def _create_pod(self, sts: Obj, pod: Obj) -> None:
        key = object_key(sts)
        try:
            await self.client.create(R.PODS, pod, sts["metadata"].get("namespace"))
        except ApiError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                return  # the cache is behind: the pod's watch event brings the next sync
            self._pod_event("create", sts, pod, exc)
            raise
        self.created.inc()
        log.info("created pod %s", pod["metadata"]["name"], extra={"key": key})
        self._pod_event("create", sts, pod, None)

    async def _relabel_pod(self, sts: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        patch = {"metadata": {"labels": ident.identity_labels(pod), "uid": meta["uid"]}}
        try:
            await self.client.patch(R.PODS, meta["name"], patch, meta.get("namespace"))
        except ApiError as exc:
            if exc.code == 404:
                return
            self._pod_event("update", sts, pod, exc)
            raise
        self._pod_event("update", sts, pod, None)

    async def _delete_pod(self, sts: Obj, pod: Obj, why: str) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(R.PODS, meta["name"], meta.get("namespace"),
                                     preconditions={"uid": meta["uid"]})
        except ApiError as exc:
            if exc.code in (404, 409):
                return
            self._pod_event("delete", sts, pod, exc)
            raise
        self.deleted.inc()
        log.info("deleted pod %s (%s)", meta["name"], why, extra={"key": object_key(sts)})
        self._pod_event("delete", sts, pod, None)

    # -- status and history -------------------------------------------------------------------
    async def _update_status(self, sts: Obj, status: Obj) -> None:
        stored = sts.get("status") or {}
        if all(stored.get(k) == v for k, v in status.items()):
            return
        meta = sts["metadata"]
        try:
            await self.client.patch(R.STATEFULSETS, meta["name"], {"status": status},
                                    meta.get("namespace"), subresource="status")
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def _trim_history(self, sts: Obj, revisions: list[Obj], pods: list[Obj],
                            current: Obj, update: Obj) -> None:
        live = {current["metadata"]["name"], update["metadata"]["name"]}
        live |= {ident.revision_of(p) for p in pods}
        limit = nested(sts, "spec", "revisionHistoryLimit")
        known = [r for r in revisions if r["metadata"]["name"] != update["metadata"]["name"]] + [update]
        for rev in rv.history_to_delete(known, live, limit if isinstance(limit, int) else 10):
            meta = rev["metadata"]
            try:
                await self.client.delete(R.CONTROLLERREVISIONS, meta["name"], meta.get("namespace"),
                                         preconditions={"uid": meta["uid"]})
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
