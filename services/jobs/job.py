"""The Job controller: runs each Job's pods to completion (kube's job-controller).

Pod events map to the controlling Job's key; the worker re-reads the Job and its pods from
the caches and carries out `job_plan.plan_sync`: deletions and creations first (recorded
as expectations, so the next sync does not repeat them before the informer shows them),
then the finalizer dance that counts finished pods exactly once: the new uncounted pods
written to the status, the `batch.kubernetes.io/job-tracking` finalizer taken off them,
the counters written. Status writes are PUTs with the resourceVersion read, so a write
over a newer Job fails and the key is retried.

Pods that still carry the finalizer after their Job is gone, or while it is being deleted,
lose it here too, so deletion is never held up.

Events as kube's: SuccessfulCreate / SuccessfulDelete ("Created pod: pi-x7k2q"),
Completed ("Job completed"), and on failure the condition's reason and message
(BackoffLimitExceeded, DeadlineExceeded), Suspended / Resumed.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from kubecore.api import batch as B
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.types import Obj, nested
from kubecore.client.events import EventRecorder
from kubecore.client.rest import ApiClient
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key
from kubecore.informer.workqueue import WorkQueue
from services.jobs import job_plan as plan

log = logging.getLogger("job")
BY_CONTROLLER = "controller-uid"
ORPHAN_PREFIX = "pod:"
EXPECTATIONS_TTL = 300.0


def controller_ref(obj: Obj) -> Obj | None:
    for ref in nested(obj, "metadata", "ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def by_controller_uid(obj: Obj) -> list[str]:
    ref = controller_ref(obj)
    return [str(ref["uid"])] if ref is not None and ref.get("uid") else []


def _now() -> datetime:
    return datetime.now(UTC)


def _rv(obj: Obj) -> int:
    """The resourceVersion as a number (this API server's are etcd revisions), 0 if not."""
    rv = str(nested(obj, "metadata", "resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


def _why(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ApiError) else str(exc) or type(exc).__name__


class Expectations:
    """Pods asked for and not yet seen, per Job key (client-go's ControllerExpectations):
    a count of creations, the keys of deletions; stale after EXPECTATIONS_TTL."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._by_job: dict[str, tuple[int, set[str], float]] = {}

    def expect(self, key: str, creations: int, deletions: Sequence[str]) -> None:
        self._by_job[key] = (creations, set(deletions), self.clock())

    def created(self, key: str) -> None:
        if key in self._by_job:
            n, dels, since = self._by_job[key]
            self._by_job[key] = (max(0, n - 1), dels, since)

    def deleted(self, key: str, pod_key: str) -> None:
        if key in self._by_job:
            self._by_job[key][1].discard(pod_key)

    def satisfied(self, key: str) -> bool:
        entry = self._by_job.get(key)
        if entry is None:
            return True
        n, dels, since = entry
        return (n <= 0 and not dels) or self.clock() - since > EXPECTATIONS_TTL

    def forget(self, key: str) -> None:
        self._by_job.pop(key, None)


def slow_start_batches(count: int) -> list[int]:
    """1, 2, 4, ... summing to `count`: a broken template fails once, not count times."""
    batches, size = [], 1
    while count > 0:
        batches.append(min(size, count))
        count -= batches[-1]
        size *= 2
    return batches


class JobController:
    def __init__(self, client: ApiClient, factory: SharedInformerFactory, *,
                 registry: CollectorRegistry, base_backoff: float = plan.DEFAULT_BACKOFF,
                 clock: Callable[[], datetime] = _now) -> None:
        self.client = client
        self.clock = clock
        self.base_backoff = base_backoff
        self.jobs = factory.informer(R.JOBS)
        self.pods = factory.informer(R.PODS, indexers={BY_CONTROLLER: by_controller_uid})
        self.queue = WorkQueue("job")
        self.events = EventRecorder(client, "job-controller")
        self.expectations = Expectations()
        # per Job key: uids of pods whose finalizer is off (and counted) while the cache may
        # still show it, and the resourceVersion of the last status this controller wrote
        self.finalizing: dict[str, set[str]] = {}
        self.written: dict[str, int] = {}
        self.created = Counter("job_pods_created", "Pods created by the Job controller.",
                               registry=registry)
        self.finished = Counter("job_finished", "Jobs finished, by condition.", ["condition"],
                                registry=registry)
        self.jobs.add_handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new),
                               on_delete=self._job_deleted)
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated,
                               on_delete=self._pod_deleted)

    # -- handlers: only enqueue ------------------------------------------------------------
    def _enqueue(self, job: Obj) -> None:
        self.queue.add(object_key(job))

    def _job_deleted(self, job: Obj) -> None:
        key = object_key(job)
        self.expectations.forget(key)
        self.finalizing.pop(key, None)
        self.written.pop(key, None)
        for pod in self.pods.store.by_index(BY_CONTROLLER, str(nested(job, "metadata", "uid") or "")):
            if plan.tracked(pod):
                self.queue.add(ORPHAN_PREFIX + object_key(pod))

    def _job_key(self, pod: Obj) -> str | None:
        """The key of the Job controlling `pod`, if the cache has that very Job."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job" or not str(ref.get("apiVersion", "")).startswith("batch/"):
            return None
        job = self.jobs.store.get_object(str(ref.get("name", "")), nested(pod, "metadata", "namespace"))
        if job is None or nested(job, "metadata", "uid") != ref.get("uid"):
            return None
        return object_key(job)

    def _route(self, pod: Obj) -> str | None:
        """The Job to sync for `pod`; a tracked pod whose Job is gone goes to be released."""
        key = self._job_key(pod)
        ref = controller_ref(pod) or {}
        if key is None and plan.tracked(pod) and ref.get("kind") == "Job":
            self.queue.add(ORPHAN_PREFIX + object_key(pod))
        return key

    def _pod_added(self, pod: Obj) -> None:
        key = self._route(pod)
        if key is not None:
            self.expectations.created(key)
            self.queue.add(key)

    def _seen_without_finalizer(self, key: str, pod: Obj) -> None:
        uids = self.finalizing.get(key)
        if uids is not None:
            uids.discard(str(nested(pod, "metadata", "uid") or ""))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = self._route(new)
        if key is not None:
            if not plan.tracked(new):
                self._seen_without_finalizer(key, new)
            if nested(new, "metadata", "deletionTimestamp") and not nested(old, "metadata", "deletionTimestamp"):
                self.expectations.deleted(key, object_key(new))
            self.queue.add(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._job_key(pod)
        if key is not None:
            self._seen_without_finalizer(key, pod)
            self.expectations.deleted(key, object_key(pod))
            self.queue.add(key)

    # -- the worker --------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        if key.startswith(ORPHAN_PREFIX):
            await self._release_orphan(key[len(ORPHAN_PREFIX):])
            return
        job = self.jobs.store.get(key)
        if job is None:
            self.expectations.forget(key)
            return
        pods = self.pods.store.by_index(BY_CONTROLLER, str(job["metadata"].get("uid")))
        if nested(job, "metadata", "deletionTimestamp"):
            await self._finalize([p for p in pods if plan.tracked(p)])
            return
        if not self.expectations.satisfied(key) or _rv(job) < self.written.get(key, 0):
            return  # the cache has not shown our last writes yet: their events bring the key back
        now = self.clock()
        sync = plan.plan_sync(job, pods, now, base_backoff=self.base_backoff,
                              finalizing=frozenset(self.finalizing.get(key, ())))
        await self._delete_pods(key, job, sync.delete)
        await self._create_pods(key, job, sync.create)
        for event_type, reason, message in sync.events:
            self.events.event(job, event_type, reason, message)
        await self._write_counts(key, job, sync, now)
        if sync.requeue_after is not None:
            self.queue.add_after(key, sync.requeue_after + 0.05)

    async def _write_counts(self, key: str, job: Obj, sync: plan.JobPlan, now: datetime) -> None:
        status = sync.status
        if sync.flush:
            job = await self._write_status(key, job, status)
        finalized = await self._finalize(sync.finalize)
        self.finalizing.setdefault(key, set()).update(finalized)
        settled, events = plan.settle(job, status, finalized, sync.indexes, now)
        if settled != (job.get("status") or {}):
            await self._write_status(key, job, settled)
        for event_type, reason, message in events:
            self.events.event(job, event_type, reason, message)
            self.finished.labels("Complete" if reason == "Completed" else "Failed").inc()
            log.info("job finished: %s", message, extra={"key": object_key(job)})

    async def _write_status(self, key: str, job: Obj, status: Obj) -> Obj:
        updated = dict(job)
        updated["status"] = status
        written = await self.client.update_status(R.JOBS, updated)
        self.written[key] = _rv(written)
        return written

    async def _finalize(self, pods: Sequence[Obj]) -> set[str]:
        """Take the tracking finalizer off `pods`; the uids it is off (or the pod gone)."""
        async def one(pod: Obj) -> str | None:
            uid = str(nested(pod, "metadata", "uid") or "")
            try:
                await self._remove_finalizer(pod)
            except ApiError as exc:
                if exc.code != 404:
                    log.warning("finalizer not removed: %s", _why(exc), extra={"key": object_key(pod)})
                    return None
            return uid
        results = await asyncio.gather(*(one(p) for p in pods))
        return {uid for uid in results if uid}

    async def _remove_finalizer(self, pod: Obj) -> None:
        finalizers = list(nested(pod, "metadata", "finalizers") or [])
        if B.TRACKING_FINALIZER not in finalizers:
            return
        i = finalizers.index(B.TRACKING_FINALIZER)
        patch = [{"op": "test", "path": f"/metadata/finalizers/{i}", "value": B.TRACKING_FINALIZER},
                 {"op": "remove", "path": f"/metadata/finalizers/{i}"}]
        try:
            await self.client.patch(R.PODS, pod["metadata"]["name"], patch,
                                    pod["metadata"].get("namespace"), patch_type="json")
        except ApiError as exc:
            if exc.code != 422:  # the test failed: the list moved; read it again
                raise
            fresh = await self.client.get(R.PODS, pod["metadata"]["name"], pod["metadata"].get("namespace"))
            if nested(fresh, "metadata", "uid") == nested(pod, "metadata", "uid"):
                await self._remove_finalizer(fresh)

    async def _release_orphan(self, pod_key: str) -> None:
        pod = self.pods.store.get(pod_key)
        if pod is None or not plan.tracked(pod):
            return
        job_key = self._job_key(pod)
        job = self.jobs.store.get(job_key) if job_key is not None else None
        if job is not None and not nested(job, "metadata", "deletionTimestamp"):
            return  # its Job is in the cache after all: the Job's sync counts it
        await self._finalize([pod])

    async def _create_pods(self, key: str, job: Obj, indexes: list[int | None]) -> None:
        if not indexes:
            return
        self.expectations.expect(key, len(indexes), [])
        namespace = job["metadata"].get("namespace")
        done = 0
        for size in slow_start_batches(len(indexes)):
            batch = indexes[done:done + size]
            results = await asyncio.gather(
                *(self.client.create(R.PODS, plan.new_pod(job, ix), namespace) for ix in batch),
                return_exceptions=True)
            done += size
            failures = [r for r in results if isinstance(r, BaseException)]
            for r in results:
                if isinstance(r, dict):
                    self.events.event(job, "Normal", "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
                elif isinstance(r, Exception):
                    self.events.event(job, "Warning", "FailedCreate", f"Error creating: {_why(r)}")
            self.created.inc(len(batch) - len(failures))
            if failures:
                for _ in range(len(failures) + len(indexes) - done):
                    self.expectations.created(key)  # never to be seen
                raise failures[0]

    async def _delete_pods(self, key: str, job: Obj, pods: list[Obj]) -> None:
        if not pods:
            return
        self.expectations.expect(key, 0, [object_key(p) for p in pods])

        async def delete(pod: Obj) -> None:
            meta = pod["metadata"]
            try:
                await self.client.delete(R.PODS, meta["name"], meta.get("namespace"),
                                         preconditions={"uid": meta["uid"]})
                self.events.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")
            except ApiError as exc:
                self.expectations.deleted(key, object_key(pod))
                if exc.code not in (404, 409):
                    self.events.event(job, "Warning", "FailedDelete", f"Error deleting: {_why(exc)}")
                    raise
        results = await asyncio.gather(*(delete(p) for p in pods), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

