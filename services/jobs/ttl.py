"""The ttl-after-finished controller: a finished Job with `ttlSecondsAfterFinished` is deleted
that many seconds after its Complete or Failed condition, with its pods (kube's
ttlafterfinished controller deletes with propagation Foreground and the Job's uid as a
precondition, after reading the Job afresh: a TTL changed meanwhile, or a new Job of the
same name, is not deleted on the cache's word)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.propagation import FOREGROUND
from kubecore.api.types import Obj
from kubecore.client.rest import ApiClient
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key, split_key
from kubecore.informer.workqueue import WorkQueue
from services.jobs.job_plan import expire_time

log = logging.getLogger("ttl-after-finished")


def _now() -> datetime:
    return datetime.now(UTC)


class TTLAfterFinishedController:
    def __init__(self, client: ApiClient, factory: SharedInformerFactory, *,
                 registry: CollectorRegistry, clock: Callable[[], datetime] = _now) -> None:
        self.client = client
        self.clock = clock
        self.jobs = factory.informer(R.JOBS)
        self.queue = WorkQueue("ttl-after-finished")
        self.deleted = Counter("ttl_after_finished_jobs_deleted", "Finished Jobs deleted for their TTL.",
                               registry=registry)
        self.jobs.add_handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new))

    def _enqueue(self, job: Obj) -> None:
        if expire_time(job) is not None and not (job.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.add(object_key(job))

    def _left(self, job: Obj) -> float | None:
        expires = expire_time(job)
        if expires is None or (job.get("metadata") or {}).get("deletionTimestamp"):
            return None
        return (expires - self.clock()).total_seconds()

    async def sync(self, key: str) -> None:
        cached = self.jobs.store.get(key)
        left = self._left(cached) if cached is not None else None
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left + 0.05)
            return
        namespace, name = split_key(key)
        try:
            fresh = await self.client.get(R.JOBS, name, namespace)
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        left = self._left(fresh)
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left + 0.05)
            return
        try:
            await self.client.delete(R.JOBS, name, namespace, propagation_policy=FOREGROUND,
                                     preconditions={"uid": fresh["metadata"]["uid"]})
        except ApiError as exc:
            if exc.code in (404, 409):
                return
            raise
        self.deleted.inc()
        log.info("deleted a finished Job whose TTL expired", extra={"key": key})
