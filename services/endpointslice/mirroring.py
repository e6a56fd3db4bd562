"""The EndpointSlice mirroring controller (kube-controller-manager's
`endpointslicemirroring-controller`), in the endpointslice process and over its informers.

Keys are `namespace/name` of an Endpoints and its Service. Handlers only enqueue: an
Endpoints or Service event its key; an event of a slice this controller mirrored the key
of its `kubernetes.io/service-name` label, unless it is the echo of our own write. The
worker plans with `mirroring_plan.plan_mirror` and writes creates, updates, then deletes.
"""
from __future__ import annotations

import logging

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.controller.run import WorkerPool
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key, split_key
from kubecore.informer.workqueue import WorkQueue
from services.endpointslice.endpoints import managed_slice_key
from services.endpointslice.mirroring_plan import MIRRORING_CONTROLLER_NAME, plan_mirror
from services.endpointslice.planner import Plan
from services.endpointslice.tracker import WriteTracker

log = logging.getLogger("endpointslicemirroring")

BY_MIRRORED = "mirrored-for"


def mirrored_key(slice_: Obj) -> str | None:
    """`ns/name` of the Endpoints a slice was mirrored from; None for anyone else's slice."""
    return managed_slice_key(slice_, MIRRORING_CONTROLLER_NAME)


def _by_mirrored(slice_: Obj) -> list[str]:
    key = mirrored_key(slice_)
    return [key] if key else []


class MirroringController:
    def __init__(self, client: ApiClient, factory: SharedInformerFactory, *, workers: int = 4,
                 echo_ttl: float = 15.0, max_per_subset: int = 1000) -> None:
        self.client = client
        self.factory = factory
        self.workers = workers
        self.max_per_subset = max_per_subset
        self.queue = WorkQueue("endpointslicemirroring")
        self.tracker = WriteTracker(ttl=echo_ttl)
        self.services = factory.informer(R.SERVICES)
        self.endpoints = factory.informer(R.ENDPOINTS)
        self.slices = factory.informer(R.ENDPOINTSLICES, indexers={BY_MIRRORED: _by_mirrored})
        for informer in (self.services, self.endpoints):
            informer.add_handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new),
                                  on_delete=self._enqueue)
        self.slices.add_handlers(on_add=self._slice_changed,
                                 on_update=lambda old, new: self._slice_changed(new),
                                 on_delete=self._slice_deleted)

    # -- handlers: only enqueue -------------------------------------------------------
    def _enqueue(self, obj: Obj) -> None:
        self.queue.add(object_key(obj))

    def _slice_changed(self, slice_: Obj) -> None:
        key = mirrored_key(slice_)
        if key is None:
            return
        meta = slice_["metadata"]
        if not self.tracker.observe(key, meta["name"], str(meta.get("resourceVersion") or "")):
            self.queue.add(key)

    def _slice_deleted(self, slice_: Obj) -> None:
        key = mirrored_key(slice_)
        if key is not None and not self.tracker.observe(key, slice_["metadata"]["name"], None):
            self.queue.add(key)

    # -- the worker ---------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        if self.tracker.waiting(key):
            self.queue.add_after(key, self.tracker.time_left(key) + 0.01)
            return
        the_plan = plan_mirror(self.endpoints.store.get(key), self.services.store.get(key),
                               self.slices.store.by_index(BY_MIRRORED, key),
                               max_per_subset=self.max_per_subset)
        if not the_plan.empty:
            await self.apply(key, the_plan)

    async def apply(self, key: str, the_plan: Plan) -> None:
        namespace, _ = split_key(key)
        for obj in the_plan.to_create:
            self._expect(key, await self.client.create(R.ENDPOINTSLICES, obj, namespace))
        for obj in the_plan.to_update:
            self._expect(key, await self.client.replace(R.ENDPOINTSLICES, obj))
        for obj in the_plan.to_delete:
            meta = obj["metadata"]
            try:
                await self.client.delete(R.ENDPOINTSLICES, meta["name"], namespace,
                                         preconditions={"uid": meta["uid"]})
            except ApiError as exc:
                if exc.code != 404:
                    raise
            self.tracker.expect_delete(key, meta["name"],
                                       self.slices.store.get_object(meta["name"], namespace) is not None)
        log.info("mirrored slices written: %d created, %d updated, %d deleted",
                 len(the_plan.to_create), len(the_plan.to_update), len(the_plan.to_delete),
                 extra={"key": key})

    def _expect(self, key: str, written: Obj) -> None:
        meta = written["metadata"]
        cached = self.slices.store.get_object(meta["name"], meta.get("namespace"))
        seen = None if cached is None else str(cached["metadata"].get("resourceVersion") or "")
        self.tracker.expect_write(key, meta["name"], str(meta.get("resourceVersion") or ""), seen)

    def pools(self) -> list[WorkerPool]:
        return [WorkerPool(self.queue, self.reconcile, self.workers)]
