"""The DaemonSet controller's informers, handlers and worker.

Handlers only enqueue DaemonSet keys: a pod's controlling DaemonSet (an orphan: every
DaemonSet whose selector matches it), every DaemonSet that should now run on a node that
appeared or changed, a DaemonSet whose revisions changed. The worker re-reads everything
from the caches (`sync`), claims pods and revisions, finds the current revision, then, once
the creations and deletions it asked for before have all been seen, creates and deletes pods
node by node (`plan.node_actions`), takes the rolling update's next step
(`plan.rolling_update`), trims the history and writes the status.

Events on the DaemonSet as kube's: `SuccessfulCreate` ("Created pod: x"), `SuccessfulDelete`,
`FailedCreate`, `FailedDaemonPod` (a failed pod, deleted with a per-node backoff) and
`SelectingAll`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.selectors import labels_match, selector_from_label_selector
from kubecore.api.types import Obj
from kubecore.client.events import NORMAL, WARNING, EventRecorder
from kubecore.client.rest import ApiClient
from kubecore.controller.health import HealthServer
from kubecore.controller.leaderelection import LeaderElector
from kubecore.controller.run import WorkerPool, run_controller
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.informer import Informer
from kubecore.informer.store import object_key, split_key
from kubecore.informer.workqueue import WorkQueue
from services.daemonset import history, ownership, placement
from services.daemonset import plan as P
from services.daemonset import revisions as rev
from services.daemonset.expectations import Expectations

log = logging.getLogger("daemonset")
NAMESPACE_INDEX = "namespace"
FAILED_BACKOFF_START, FAILED_BACKOFF_CAP = 1.0, 900.0


def _now() -> datetime:
    return datetime.now(UTC)


def _by_namespace(obj: Obj) -> list[str]:
    return [(obj.get("metadata") or {}).get("namespace") or ""]


def _why(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ApiError) else str(exc) or type(exc).__name__


class DaemonSetController:
    def __init__(self, client: ApiClient, *, factory: SharedInformerFactory | None = None,
                 workers: int = 2, registry: CollectorRegistry | None = None,
                 clock: Callable[[], datetime] = _now) -> None:
        self.client = client
        self.factory = factory or SharedInformerFactory(client)
        self.workers = workers
        self.clock = clock
        self.registry = registry or CollectorRegistry()
        self.queue = WorkQueue("daemonset")
        self.events = EventRecorder(client, "daemonset-controller")
        self.expectations = Expectations()
        self._failed_backoff: dict[str, tuple[float, float]] = {}  # key -> (delay, since)
        self.created = Counter("daemonset_pods_created", "Pods created by the DaemonSet controller.",
                               registry=self.registry)
        self.deleted = Counter("daemonset_pods_deleted", "Pods deleted by the DaemonSet controller.",
                               registry=self.registry)
        self.daemonsets = self.factory.informer(R.DAEMONSETS, indexers={NAMESPACE_INDEX: _by_namespace})
        self.pods = self.factory.informer(R.PODS, indexers={NAMESPACE_INDEX: _by_namespace})
        self.nodes = self.factory.informer(R.NODES)
        self.revisions = self.factory.informer(R.CONTROLLERREVISIONS,
                                               indexers={NAMESPACE_INDEX: _by_namespace})
        self.daemonsets.add_handlers(on_add=self._enqueue, on_update=lambda o, n: self._enqueue(n),
                                     on_delete=self._ds_deleted)
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated,
                               on_delete=self._pod_deleted)
        self.nodes.add_handlers(on_add=self._node_added, on_update=self._node_updated,
                                on_delete=lambda node: self._enqueue_all())
        self.revisions.add_handlers(on_add=self._revision_changed,
                                    on_update=lambda o, n: self._revision_changed(n),
                                    on_delete=self._revision_changed)

    # -- handlers: only enqueue ---------------------------------------------------------
    def _enqueue(self, ds: Obj) -> None:
        self.queue.add(object_key(ds))

    def _enqueue_all(self) -> None:
        for ds in self.daemonsets.store.list():
            self._enqueue(ds)

    def _ds_deleted(self, ds: Obj) -> None:
        key = object_key(ds)
        self.expectations.forget(key)
        self.queue.add(key)

    def _owner_key(self, obj: Obj) -> str | None:
        """The key of the DaemonSet controlling `obj`, if it is one we know (uid and all)."""
        ref = ownership.controller_ref(obj)
        if ref is None or ref.get("kind") != "DaemonSet":
            return None
        ds = self.daemonsets.store.get_object(ref.get("name", ""), obj["metadata"].get("namespace"))
        if ds is None or ds["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(ds)

    def _enqueue_matching(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        for ds in self.daemonsets.store.by_index(NAMESPACE_INDEX, meta.get("namespace") or ""):
            selector = selector_from_label_selector((ds.get("spec") or {}).get("selector"))
            if selector and labels_match(selector, meta.get("labels") or {}):
                self._enqueue(ds)

    def _pod_added(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif ownership.controller_ref(pod) is None:
            self._enqueue_matching(pod)

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
        elif ownership.controller_ref(new) is None:
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key)
            self.queue.add(key)

    def _requeue_when_available(self, key: str, old: Obj, new: Obj) -> None:
        ds = self.daemonsets.store.get(key)
        min_ready = int(((ds or {}).get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and P.is_ready(new) and not P.is_ready(old):
            self.queue.add_after(key, min_ready + 0.5)

    def _node_added(self, node: Obj) -> None:
        for ds in self.daemonsets.store.list():
            if placement.should_run(ds, node)[0]:
                self._enqueue(ds)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        """Only what changes where pods belong: heartbeats do not wake every DaemonSet."""
        for ds in self.daemonsets.store.list():
            if placement.should_run(ds, old) != placement.should_run(ds, new):
                self._enqueue(ds)

    def _revision_changed(self, revision: Obj) -> None:
        key = self._owner_key(revision)
        if key is not None:
            self.queue.add(key)

    # -- the reconcile ----------------------------------------------------------------
    async def sync(self, key: str) -> None:
        ds = self.daemonsets.store.get(key)
        if ds is None:
            self.expectations.forget(key)
            return
        selector = selector_from_label_selector((ds.get("spec") or {}).get("selector"))
        if not selector:
            self.events.event(ds, WARNING, "SelectingAll", "This daemon set is selecting all pods. "
                              "A non-empty selector is required.")
            return
        if ds["metadata"].get("deletionTimestamp"):
            return  # its revisions may be going: no status can be trusted (as kube)
        namespace, _ = split_key(key)
        owned_revisions = await self._claim(ds, self.revisions, R.CONTROLLERREVISIONS, selector)
        pods = [p for p in await self._claim(ds, self.pods, R.PODS, selector)
                if not (P.is_terminal(p) and P.is_deleting(p))]
        current, old = await history.construct(self.client, ds, owned_revisions, pods)
        hash_ = rev.current_hash(current)
        nodes = self.nodes.store.list()
        if not self.expectations.satisfied(key):
            await self._write_status(ds, nodes, self._pods_by_node(pods), hash_, observed=False)
            return
        await self._manage(key, ds, nodes, self._pods_by_node(pods), hash_)
        if self.expectations.satisfied(key) and P.allows_rolling(ds):
            await self._apply(key, ds, P.rolling_update(ds, nodes, self._pods_by_node(pods), hash_,
                                                        self.clock()), hash_)
        await history.clean_up(self.client, ds, old, pods)
        await self._write_status(ds, nodes, self._pods_by_node(pods), hash_, observed=True)

    @staticmethod
    def _pods_by_node(pods: Sequence[Obj]) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for pod in pods:
            node = placement.target_node(pod)
            if node is not None:
                out.setdefault(node, []).append(pod)
        return out

    async def _claim(self, ds: Obj, informer: Informer, rt: R.ResourceType,
                     selector: list[Any]) -> list[Obj]:
        namespace = ds["metadata"].get("namespace") or ""
        claim = ownership.claim(ds, informer.store.by_index(NAMESPACE_INDEX, namespace), selector)
        refused: set[str] = set()
        if claim.adopt and not await self._may_adopt(ds):
            refused = {object_key(o) for o in claim.adopt}
            claim.adopt = []
        for obj in claim.adopt:
            try:
                await self.client.patch(rt, obj["metadata"]["name"], ownership.adoption_patch(ds, obj),
                                        namespace)
            except ApiError as exc:
                if exc.code not in (404, 409, 422):
                    raise
                refused.add(object_key(obj))
        for obj in claim.release:
            try:
                await self.client.patch(rt, obj["metadata"]["name"], ownership.release_patch(ds, obj),
                                        namespace)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return [o for o in claim.owned if object_key(o) not in refused]

    async def _may_adopt(self, ds: Obj) -> bool:
        """apimachinery's RecheckDeletionTimestamp: the DaemonSet as the server has it now."""
        meta = ds["metadata"]
        try:
            fresh = await self.client.get(R.DAEMONSETS, meta["name"], meta.get("namespace"))
        except ApiError as exc:
            if exc.code == 404:
                return False
            raise
        return bool(fresh["metadata"].get("uid") == meta.get("uid")
                    and not fresh["metadata"].get("deletionTimestamp"))

    async def _manage(self, key: str, ds: Obj, nodes: Sequence[Obj],
                      pods_by_node: dict[str, list[Obj]], hash_: str) -> None:
        actions = P.node_actions(ds, nodes, pods_by_node, hash_, self.clock())
        for pod in actions.succeeded:
            self.events.event(ds, NORMAL, "SucceededDaemonPod", f"Found succeeded daemon pod "
                              f"{object_key(pod)} on node {placement.target_node(pod)}, will try "
                              "to delete it")
            actions.delete.append(pod)
        actions.delete += self._failed_to_delete(key, ds, actions.failed)
        await self._apply(key, ds, actions, hash_)

    def _failed_to_delete(self, key: str, ds: Obj, failed: Sequence[Obj]) -> list[Obj]:
        """Failed pods deleted at most once per backoff (1 s doubling to 15 min) per node:
        a kubelet that keeps refusing the pod must not make a hot loop."""
        out: list[Obj] = []
        now = time.monotonic()
        generation = (ds.get("status") or {}).get("observedGeneration", 0)
        for pod in failed:
            node = placement.target_node(pod)
            backoff_key = f"{ds['metadata'].get('uid')}/{generation}/{node}"
            delay, since = self._failed_backoff.get(backoff_key, (0.0, 0.0))
            if delay and now - since < delay:
                self.queue.add_after(key, delay - (now - since))
                continue
            self._failed_backoff[backoff_key] = (min(FAILED_BACKOFF_CAP, delay * 2 or
                                                     FAILED_BACKOFF_START), now)
            self.events.event(ds, WARNING, "FailedDaemonPod", f"Found failed daemon pod "
                              f"{object_key(pod)} on node {node}, will try to kill it")
            out.append(pod)
        return out

    async def _apply(self, key: str, ds: Obj, actions: P.Actions, hash_: str) -> None:
        create_on = actions.create_on[:P.BURST_REPLICAS]
        victims = actions.delete[:P.BURST_REPLICAS]
        if not create_on and not victims:
            return
        self.expectations.expect(key, len(create_on), len(victims))
        errors = await self._create_pods(key, ds, create_on, hash_)
        results = await asyncio.gather(*(self._delete_pod(key, ds, p) for p in victims),
                                       return_exceptions=True)
        errors += [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def _create_pods(self, key: str, ds: Obj, nodes: Sequence[str], hash_: str
                           ) -> list[BaseException]:
        """In batches of 1, 2, 4, ...: a broken template fails once, not once per node."""
        errors: list[BaseException] = []
        namespace = ds["metadata"].get("namespace")
        pos, size = 0, 1
        while pos < len(nodes):
            batch = nodes[pos:pos + size]
            results = await asyncio.gather(
                *(self.client.create(R.PODS, P.new_pod(ds, n, hash_), namespace) for n in batch),
                return_exceptions=True)
            for node, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    self.expectations.creation_observed(key)
                    errors.append(result)
                    self.events.event(ds, WARNING, "FailedCreate", f"Error creating: {_why(result)}")
                else:
                    self.created.inc()
                    log.info("created pod %s for node %s", result["metadata"]["name"], node,
                             extra={"key": key})
                    self.events.event(ds, NORMAL, "SuccessfulCreate",
                                      f"Created pod: {result['metadata']['name']}")
            pos += len(batch)
            if errors:
                self.expectations.creation_observed(key, len(nodes) - pos)  # never sent
                break
            size *= 2
        return errors

    async def _delete_pod(self, key: str, ds: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(R.PODS, meta["name"], meta.get("namespace"),
                                     preconditions={"uid": meta["uid"]})
        except ApiError as exc:
            self.expectations.deletion_observed(key)
            if exc.code not in (404, 409):
                self.events.event(ds, WARNING, "FailedDelete", f"Error deleting: {_why(exc)}")
                raise
            return
        except BaseException:
            self.expectations.deletion_observed(key)
            raise
        self.deleted.inc()
        log.info("deleted pod %s", meta["name"], extra={"key": key})
        self.events.event(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta['name']}")

    async def _write_status(self, ds: Obj, nodes: Sequence[Obj],
                            pods_by_node: dict[str, list[Obj]], hash_: str, *, observed: bool) -> None:
        now = self.clock()
        status = P.daemonset_status(ds, nodes, pods_by_node, hash_, now, observed=observed)
        if status != (ds.get("status") or {}):
            try:
                await self.client.update_status(R.DAEMONSETS, {**ds, "status": status})
            except ApiError as exc:
                if exc.code != 404:
                    raise  # a 409: the next sync starts from the newer DaemonSet
        wait = P.seconds_until_available(ds, [p for ps in pods_by_node.values() for p in ps], now)
        if wait is not None:
            self.queue.add_after(object_key(ds), wait + 0.5)

    # -- running ------------------------------------------------------------------------
    def pools(self) -> list[WorkerPool]:
        return [WorkerPool(self.queue, self.sync, self.workers)]

    async def run(self, *, health_host: str = "127.0.0.1", health_port: int | None = None,
                  stop: asyncio.Event | None = None, handle_signals: bool = True,
                  on_ready: Callable[[HealthServer | None], None] | None = None,
                  elector: LeaderElector | None = None) -> None:
        try:
            await run_controller(name="daemonset", informers=self.factory, pools=self.pools(),
                                 registry=self.registry, health_host=health_host,
                                 health_port=health_port, stop=stop, handle_signals=handle_signals,
                                 on_ready=on_ready, elector=elector)
        finally:
            await self.events.close()
