"""The ReplicaSet controller: keeps `spec.replicas` pods matching each ReplicaSet.

Pod events are mapped to the owning ReplicaSet's key (an orphan to every ReplicaSet
whose selector matches it, which may adopt it); the reconcile re-reads both from the
caches. Creations and deletions are recorded as expectations first, so the next sync
does not act again on a picture the informer has not caught up with.

Events on the ReplicaSet as kube's pod control posts them: `SuccessfulCreate` ("Created
pod: web-abc12"), `SuccessfulDelete`, and `FailedCreate`/`FailedDelete` (Warning).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.selectors import labels_match, selector_from_label_selector
from kubecore.api.types import Obj
from kubecore.client.events import NORMAL, WARNING, EventRecorder
from kubecore.client.rest import ApiClient
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key, split_key
from kubecore.informer.workqueue import WorkQueue
from services.deployments import controller_refs as own
from services.deployments import replicaset_plan as plan
from services.deployments.expectations import Expectations

log = logging.getLogger("replicaset")


def _now() -> datetime:
    return datetime.now(UTC)


def _why(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ApiError) else str(exc) or type(exc).__name__


class ReplicaSetController:
    def __init__(self, client: ApiClient, factory: SharedInformerFactory, *,
                 registry: CollectorRegistry) -> None:
        self.client = client
        self.replicasets = factory.informer(R.REPLICASETS,
                                            indexers={own.NAMESPACE_INDEX: own.by_namespace})
        self.pods = factory.informer(R.PODS, indexers={own.NAMESPACE_INDEX: own.by_namespace,
                                                       own.CONTROLLER_INDEX: own.by_controller_uid})
        self.queue = WorkQueue("replicaset")
        self.events = EventRecorder(client, "replicaset-controller")
        self.expectations = Expectations()
        self.created = Counter("replicaset_pods_created", "Pods created by the ReplicaSet controller.",
                               registry=registry)
        self.deleted = Counter("replicaset_pods_deleted", "Pods deleted by the ReplicaSet controller.",
                               registry=registry)
        self.replicasets.add_handlers(on_add=self._enqueue,
                                      on_update=lambda old, new: self._enqueue(new),
                                      on_delete=self._rs_deleted)
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated,
                               on_delete=self._pod_deleted)

    # -- handlers ---------------------------------------------------------------------
    def _enqueue(self, rs: Obj) -> None:
        self.queue.add(object_key(rs))

    def _rs_deleted(self, rs: Obj) -> None:
        key = object_key(rs)
        self.expectations.forget(key)
        self.queue.add(key)

    def _owner_key(self, pod: Obj) -> str | None:
        """The key of the ReplicaSet controlling `pod`, if it is one we know (uid and all)."""
        ref = own.controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        ns = pod["metadata"].get("namespace")
        rs = self.replicasets.store.get_object(ref.get("name", ""), ns)
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(rs)

    def _enqueue_matching(self, pod: Obj) -> None:
        """An orphan: every ReplicaSet that would adopt it gets a look."""
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        for rs in self.replicasets.store.by_index(own.NAMESPACE_INDEX, meta.get("namespace") or ""):
            selector = selector_from_label_selector((rs.get("spec") or {}).get("selector"))
            if selector and labels_match(selector, labels):
                self.queue.add(object_key(rs))

    def _pod_added(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)  # seen for the first time already on its way out
            return
        if own.controller_ref(pod) is None:
            self._enqueue_matching(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)
            return
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        if old_key is not None and old_key != new_key:
            self.queue.add(old_key)
        if new_key is not None:
            self.queue.add(new_key)
            self._requeue_when_available(new_key, old, new)
        elif own.controller_ref(new) is None:
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))
            self.queue.add(key)

    def _requeue_when_available(self, rs_key: str, old: Obj, new: Obj) -> None:
        """A pod that just turned ready counts as available only after minReadySeconds."""
        rs = self.replicasets.store.get(rs_key)
        min_ready = int(((rs or {}).get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and plan.is_pod_ready(new) and not plan.is_pod_ready(old):
            self.queue.add_after(rs_key, min_ready + 1)

    # -- the reconcile ----------------------------------------------------------------
    async def sync(self, key: str) -> None:
        rs = self.replicasets.store.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        namespace, _ = split_key(key)
        needs_sync = self.expectations.satisfied(key)
        selector = selector_from_label_selector((rs.get("spec") or {}).get("selector"))
        candidates = [p for p in self.pods.store.by_index(own.NAMESPACE_INDEX, namespace or "")
                      if plan.is_pod_active(p)]
        claim = own.claim(rs, candidates, selector)
        owned = await self._adopt_and_release(key, rs, claim)
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            await self._manage_replicas(key, rs, owned)
        await self._update_status(key, rs, owned)

    async def _adopt_and_release(self, key: str, rs: Obj, claim: own.Claim) -> list[Obj]:
        adopted_failed = await own.refuse_stale_adoption(self.client, R.REPLICASETS, rs, claim)
        for pod in claim.adopt:
            meta = pod["metadata"]
            try:
                await self.client.patch(R.PODS, meta["name"], own.adoption_patch(rs, pod),
                                        meta.get("namespace"))
                log.info("adopted pod %s", object_key(pod), extra={"key": key})
            except ApiError as exc:
                if exc.code not in (404, 409, 422):
                    raise
                adopted_failed.add(object_key(pod))
        for pod in claim.release:
            meta = pod["metadata"]
            try:
                await self.client.patch(R.PODS, meta["name"], own.release_patch(rs, pod),
                                        meta.get("namespace"))
                log.info("released pod %s", object_key(pod), extra={"key": key})
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return [p for p in claim.owned if object_key(p) not in adopted_failed]

    async def _manage_replicas(self, key: str, rs: Obj, owned: list[Obj]) -> None:
        wanted = int((rs.get("spec") or {}).get("replicas", 1))
        diff = plan.replica_diff(wanted, len(owned))
        if diff > 0:
            await self._create_pods(key, rs, diff)
        elif diff < 0:
            await self._delete_pods(key, rs, plan.pods_to_delete(owned, -diff))

    async def _create_pods(self, key: str, rs: Obj, count: int) -> None:
        self.expectations.expect_creations(key, count)
        log.info("creating %d pod(s)", count, extra={"key": key})
        namespace = rs["metadata"].get("namespace")
        batches = plan.slow_start_batches(count)
        for i, batch in enumerate(batches):
            results = await asyncio.gather(
                *(self.client.create(R.PODS, plan.new_pod(rs), namespace) for _ in range(batch)),
                return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            self.created.inc(batch - len(failures))
            for r in results:
                if isinstance(r, dict):
                    self.events.event(rs, NORMAL, "SuccessfulCreate",
                                      f"Created pod: {r['metadata']['name']}")
                elif isinstance(r, Exception):
                    self.events.event(rs, WARNING, "FailedCreate", f"Error creating: {_why(r)}")
            for _ in failures:  # these will never be seen: stop waiting for them
                self.expectations.creation_observed(key)
            if failures:
                for _ in range(sum(batches[i + 1:])):  # nor will the batches not sent
                    self.expectations.creation_observed(key)
                raise failures[0]

    async def _delete_pods(self, key: str, rs: Obj, victims: list[Obj]) -> None:
        pod_keys = [object_key(p) for p in victims]
        self.expectations.expect_deletions(key, pod_keys)
        log.info("deleting %d pod(s): %s", len(victims), ", ".join(pod_keys), extra={"key": key})

        async def delete(pod: Obj) -> None:
            meta = pod["metadata"]
            try:
                await self.client.delete(R.PODS, meta["name"], meta.get("namespace"),
                                         preconditions={"uid": meta["uid"]})
                self.deleted.inc()
                self.events.event(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta['name']}")
            except ApiError as exc:
                self.expectations.deletion_observed(key, object_key(pod))
                if exc.code not in (404, 409):
                    self.events.event(rs, WARNING, "FailedDelete", f"Error deleting: {_why(exc)}")
                    raise
            except BaseException as exc:
                self.expectations.deletion_observed(key, object_key(pod))
                if isinstance(exc, Exception):
                    self.events.event(rs, WARNING, "FailedDelete", f"Error deleting: {_why(exc)}")
                raise

        results = await asyncio.gather(*(delete(p) for p in victims), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def _update_status(self, key: str, rs: Obj, owned: list[Obj]) -> None:
        now = _now()
        status = plan.replicaset_status(rs, owned, now)
        if status != (rs.get("status") or {}):
            namespace, name = split_key(key)
            try:
                await self.client.patch(R.REPLICASETS, name, {"status": status}, namespace,
                                        subresource="status")
            except ApiError as exc:
                if exc.code != 404:
                    raise
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        waits = [w for p in owned
                 if (w := plan.seconds_until_available(p, min_ready, now)) is not None]
        if waits:
            self.queue.add_after(key, min(waits) + 0.5)
