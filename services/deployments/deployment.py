"""The Deployment controller: one ReplicaSet per pod template, rolled from old to new.

ReplicaSet events are mapped to the owning Deployment's key (an orphan to every
Deployment whose selector matches it); pod deletions too, which a Recreate rollout waits
for. A sync claims the ReplicaSets, finds the one whose template is the Deployment's
(creating it, named `<deployment>-<pod-template-hash>`, when there is none), takes one
step (`deployment_plan`), and writes the status the ReplicaSets now add up to.

Every resize is a `ScalingReplicaSet` event on the Deployment, in kube 1.31's words
("Scaled up replica set web-5d4f from 0 to 3").
"""
from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.selectors import labels_match, selector_from_label_selector
from kubecore.api.types import Obj
from kubecore.client.events import NORMAL, EventRecorder
from kubecore.client.rest import ApiClient
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key, split_key
from kubecore.informer.workqueue import WorkQueue
from services.deployments import controller_refs as own
from services.deployments import deployment_plan as plan

log = logging.getLogger("deployment")


def _now() -> datetime:
    return datetime.now(UTC)


def _state(rs: Obj) -> plan.RSState:
    """A ReplicaSet as a step sees it. Its status may lag its spec: after a scale-down the
    pods it is about to delete still show as available, so no more than spec.replicas are
    counted (kube counts them all, and can then scale down past maxUnavailable)."""
    status = rs.get("status") or {}
    meta = rs["metadata"]
    replicas = int((rs.get("spec") or {}).get("replicas", 0))
    return plan.RSState(name=meta["name"], replicas=replicas,
                        pods=int(status.get("replicas") or 0),
                        available=min(replicas, int(status.get("availableReplicas") or 0)),
                        order=meta.get("creationTimestamp", ""))


def _desired_annotation(rs: Obj) -> int | None:
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(plan.DESIRED_REPLICAS)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class DeploymentController:
    def __init__(self, client: ApiClient, factory: SharedInformerFactory, *,
                 registry: CollectorRegistry) -> None:
        self.client = client
        self.deployments = factory.informer(R.DEPLOYMENTS,
                                            indexers={own.NAMESPACE_INDEX: own.by_namespace})
        self.replicasets = factory.informer(R.REPLICASETS,
                                            indexers={own.NAMESPACE_INDEX: own.by_namespace,
                                                      own.CONTROLLER_INDEX: own.by_controller_uid})
        self.pods = factory.informer(R.PODS, indexers={own.NAMESPACE_INDEX: own.by_namespace,
                                                       own.CONTROLLER_INDEX: own.by_controller_uid})
        self.queue = WorkQueue("deployment")
        self.events = EventRecorder(client, "deployment-controller")
        self.scaled = Counter("deployment_replicaset_scalings",
                              "ReplicaSet resizes made by the Deployment controller.",
                              registry=registry)
        self.deployments.add_handlers(on_add=self._enqueue,
                                      on_update=lambda old, new: self._enqueue(new),
                                      on_delete=self._enqueue)
        self.replicasets.add_handlers(on_add=self._rs_changed,
                                      on_update=self._rs_updated,
                                      on_delete=self._rs_changed)
        self.pods.add_handlers(on_delete=self._pod_deleted)

    # -- handlers ---------------------------------------------------------------------
    def _enqueue(self, d: Obj) -> None:
        self.queue.add(object_key(d))

    def _owner_key(self, rs: Obj) -> str | None:
        ref = own.controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.deployments.store.get_object(ref.get("name", ""), rs["metadata"].get("namespace"))
        if d is None or d["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(d)

    def _rs_changed(self, rs: Obj) -> None:
        key = self._owner_key(rs)
        if key is not None:
            self.queue.add(key)
        elif own.controller_ref(rs) is None:
            meta = rs["metadata"]
            labels = meta.get("labels") or {}
            for d in self.deployments.store.by_index(own.NAMESPACE_INDEX, meta.get("namespace") or ""):
                selector = selector_from_label_selector((d.get("spec") or {}).get("selector"))
                if selector and labels_match(selector, labels):
                    self.queue.add(object_key(d))

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        old_key = self._owner_key(old)
        if old_key is not None and old_key != self._owner_key(new):
            self.queue.add(old_key)
        self._rs_changed(new)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for the old pods to be gone: their deletion is its cue."""
        ref = own.controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.store.get_object(ref.get("name", ""), pod["metadata"].get("namespace"))
        if rs is not None:
            key = self._owner_key(rs)
            d = self.deployments.store.get(key) if key else None
            if key and d is not None and ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
                self.queue.add(key)

    # -- the reconcile ----------------------------------------------------------------
    async def sync(self, key: str) -> None:
        d = self.deployments.store.get(key)
        if d is None:
            return
        d = copy.deepcopy(d)
        namespace, _ = split_key(key)
        spec = d.get("spec") or {}
        selector = selector_from_label_selector(spec.get("selector"))
        if not selector:
            log.warning("selector selects everything: not syncing", extra={"key": key})
            return
        rs_list = await self._claim_replicasets(key, d, selector, namespace or "")
        new_rs, olds = self._split(d, rs_list)
        if d["metadata"].get("deletionTimestamp"):
            await self._write_status(key, d, new_rs, rs_list)
            return
        replicas = int(spec.get("replicas", 1))
        surge, unavailable = plan.surge_and_unavailable(replicas, spec.get("strategy"))
        active_desired = [_desired_annotation(rs) for rs in rs_list
                          if (rs.get("spec") or {}).get("replicas", 0) > 0]
        if spec.get("paused") or plan.is_scaling_event(replicas, active_desired):
            changes = plan.scale_step(replicas, surge, _state(new_rs) if new_rs else None,
                                      [_state(o) for o in olds])
            rs_list = await self._apply(key, d, rs_list, changes, surge)
        elif (spec.get("strategy") or {}).get("type") == "Recreate":
            rs_list = await self._recreate(key, d, new_rs, olds, rs_list)
        else:
            if new_rs is None:
                new_rs = await self._create_new_rs(key, d, olds, surge, rs_list)
                if new_rs is None:
                    return
                rs_list = [*rs_list, new_rs]
            changes = plan.rolling_update_step(replicas, surge, unavailable, _state(new_rs),
                                               [_state(o) for o in olds])
            rs_list = await self._apply(key, d, rs_list, changes, surge)
        new_rs, olds = self._split(d, rs_list)
        if new_rs is not None:
            await self._sync_revision(key, d, new_rs, olds)
        status = await self._write_status(key, d, new_rs, rs_list)
        if plan.is_complete(d, status):
            await self._clean_up_history(key, d, olds)

    def _split(self, d: Obj, rs_list: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        """(the ReplicaSet with the Deployment's template, oldest if several; the others)."""
        template = d["spec"]["template"]
        matching = sorted((rs for rs in rs_list
                           if plan.templates_equal((rs.get("spec") or {}).get("template") or {},
                                                   template)),
                          key=lambda rs: (rs["metadata"].get("creationTimestamp", ""),
                                          rs["metadata"]["name"]))
        new_rs = matching[0] if matching else None
        return new_rs, [rs for rs in rs_list if rs is not new_rs]

    async def _claim_replicasets(self, key: str, d: Obj, selector: list, namespace: str
                                 ) -> list[Obj]:
        candidates = self.replicasets.store.by_index(own.NAMESPACE_INDEX, namespace)
        claim = own.claim(d, candidates, selector)
        failed = await own.refuse_stale_adoption(self.client, R.DEPLOYMENTS, d, claim)
        for rs in claim.adopt:
            try:
                await self.client.patch(R.REPLICASETS, rs["metadata"]["name"],
                                        own.adoption_patch(d, rs), namespace)
                log.info("adopted replicaset %s", object_key(rs), extra={"key": key})
            except ApiError as exc:
                if exc.code not in (404, 409, 422):
                    raise
                failed.add(object_key(rs))
        for rs in claim.release:
            try:
                await self.client.patch(R.REPLICASETS, rs["metadata"]["name"],
                                        own.release_patch(d, rs), namespace)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return [rs for rs in claim.owned if object_key(rs) not in failed]

    async def _create_new_rs(self, key: str, d: Obj, olds: list[Obj], surge: int,
                             rs_list: list[Obj]) -> Obj | None:
        """Create `<deployment>-<hash>`. A name already taken by a ReplicaSet that is not
        ours with this template is a hash collision: count it and try the next name."""
        spec, status = d["spec"], d.get("status") or {}
        collisions = status.get("collisionCount")
        template_hash = plan.pod_template_hash(spec["template"], collisions)
        replicas = int(spec.get("replicas", 1))
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            initial = 0
        else:
            probe = plan.RSState(name="", replicas=0)
            initial = plan.new_rs_replicas(replicas, surge, probe,
                                           [probe, *(_state(o) for o in olds)])
        rs = plan.new_replicaset(d, template_hash, initial, plan.next_revision(olds), surge)
        namespace = d["metadata"].get("namespace")
        try:
            created = await self.client.create(R.REPLICASETS, rs, namespace)
        except ApiError as exc:
            if exc.code != 409:
                raise
            existing = await self.client.get(R.REPLICASETS, rs["metadata"]["name"], namespace)
            ref = own.controller_ref(existing)
            if (ref is not None and ref.get("uid") == d["metadata"]["uid"]
                    and plan.templates_equal(existing["spec"]["template"], spec["template"])):
                return existing  # ours; the cache had not shown it yet
            count = int(collisions or 0) + 1
            log.warning("hash collision on replicaset %s; collisionCount=%d",
                        rs["metadata"]["name"], count, extra={"key": key})
            await self.client.patch(R.DEPLOYMENTS, d["metadata"]["name"],
                                    {"status": {"collisionCount": count}}, namespace,
                                    subresource="status")
            self.queue.add(key)
            return None
        log.info("created replicaset %s with %d replica(s)", created["metadata"]["name"], initial,
                 extra={"key": key})
        if initial > 0:
            self._scaled(d, created["metadata"]["name"], 0, initial)
        return created

    def _scaled(self, d: Obj, rs_name: str, old: int, new: int) -> None:
        direction = "up" if old < new else "down"
        self.events.event(d, NORMAL, "ScalingReplicaSet",
                          f"Scaled {direction} replica set {rs_name} from {old} to {new}")

    async def _recreate(self, key: str, d: Obj, new_rs: Obj | None, olds: list[Obj],
                        rs_list: list[Obj]) -> list[Obj]:
        old_uids = {rs["metadata"]["uid"] for rs in olds}
        # Pods not finished still hold their place, terminating or not.
        old_pods = sum(1 for uid in old_uids
                       for p in self.pods.store.by_index(own.CONTROLLER_INDEX, uid)
                       if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
        replicas = int(d["spec"].get("replicas", 1))
        changes = plan.recreate_step(replicas, _state(new_rs) if new_rs else None,
                                     [_state(o) for o in olds], old_pods)
        if changes is None:
            created = await self._create_new_rs(key, d, olds, 0, rs_list)
            if created is None:
                return rs_list
            rs_list = [*rs_list, created]
            changes = plan.recreate_step(replicas, _state(created), [_state(o) for o in olds], 0) or {}
        return await self._apply(key, d, rs_list, changes, 0)

    async def _apply(self, key: str, d: Obj, rs_list: list[Obj], changes: dict[str, int],
                     surge: int) -> list[Obj]:
        """Resize ReplicaSets; returns the list with the servers' answers in place."""
        if not changes:
            return rs_list
        replicas = int(d["spec"].get("replicas", 1))
        out = []
        for rs in rs_list:
            name = rs["metadata"]["name"]
            if name not in changes:
                out.append(rs)
                continue
            patch = {"spec": {"replicas": changes[name]},
                     "metadata": {"annotations": {plan.DESIRED_REPLICAS: str(replicas),
                                                  plan.MAX_REPLICAS: str(replicas + surge)}}}
            old = int((rs.get("spec") or {}).get("replicas", 0))
            log.info("scaling replicaset %s from %d to %d", name, old, changes[name],
                     extra={"key": key})
            out.append(await self.client.patch(R.REPLICASETS, name, patch,
                                               rs["metadata"].get("namespace")))
            self.scaled.inc()
            if old != changes[name]:
                self._scaled(d, name, old, changes[name])
        return out

    async def _sync_revision(self, key: str, d: Obj, new_rs: Obj, olds: list[Obj]) -> None:
        """The new ReplicaSet carries the highest revision and the Deployment's annotations;
        the Deployment says which revision."""
        wanted = max(plan.revision_of(new_rs), plan.next_revision(olds))
        namespace = d["metadata"].get("namespace")
        missing = plan.new_replicaset_annotations(d, new_rs, wanted)
        if missing:
            await self.client.patch(R.REPLICASETS, new_rs["metadata"]["name"],
                                    {"metadata": {"annotations": missing}}, namespace)
        if plan.revision_of(d) != wanted:
            await self.client.patch(R.DEPLOYMENTS, d["metadata"]["name"],
                                    {"metadata": {"annotations": {plan.REVISION: str(wanted)}}},
                                    namespace)

    async def _write_status(self, key: str, d: Obj, new_rs: Obj | None, rs_list: list[Obj]) -> Obj:
        now = _now()
        status = plan.deployment_status(d, new_rs, rs_list, now)
        current = d.get("status") or {}
        if {**current, **status} != current:
            namespace, name = split_key(key)
            await self.client.patch(R.DEPLOYMENTS, name, {"status": status}, namespace,
                                    subresource="status")
        deadline = d["spec"].get("progressDeadlineSeconds")
        if deadline is not None and not plan.is_complete(d, status):
            # to notice a rollout that stalls; never at once: a negative deadline (stored, though
            # kube-apiserver would refuse it) made every sync ask for the next straight away
            self.queue.add_after(key, max(float(deadline), 0.0) + 1)
        return status

    async def _clean_up_history(self, key: str, d: Obj, olds: list[Obj]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        for rs in plan.history_to_delete(olds, int(limit)):
            meta = rs["metadata"]
            log.info("deleting old replicaset %s (revision %d)", meta["name"], plan.revision_of(rs),
                     extra={"key": key})
            try:
                await self.client.delete(R.REPLICASETS, meta["name"], meta.get("namespace"),
                                         preconditions={"uid": meta["uid"]})
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
