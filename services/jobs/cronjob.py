"""The CronJob controller: starts a Job at each scheduled time (kube's cronjob-controller v2).

Job events map to the controlling CronJob's key; the worker re-reads the CronJob and its
Jobs from the caches, carries out `cronjob_plan`, writes the status with the
resourceVersion read and looks again at the next scheduled time (`add_after`), so nothing
polls. The Job's name is the scheduled time in minutes: a Job made twice for one time is
refused by the API server (409) and adopted into the active list if it is ours.

Events as kube's: SuccessfulCreate ("Created job hello-29000000"), SawCompletedJob,
SuccessfulDelete (history and Replace), JobAlreadyActive, MissSchedule, MissingJob,
UnexpectedJob, UnparseableSchedule, UnknownTimeZone.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter

from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.api.propagation import BACKGROUND
from kubecore.api.types import Obj, nested
from kubecore.client.events import EventRecorder
from kubecore.client.rest import ApiClient
from kubecore.informer.factory import SharedInformerFactory
from kubecore.informer.store import object_key, split_key
from kubecore.informer.workqueue import WorkQueue
from services.jobs import cronjob_plan as plan
from services.jobs.job import BY_CONTROLLER, by_controller_uid, controller_ref

log = logging.getLogger("cronjob")


def _now() -> datetime:
    return datetime.now(UTC)


class CronJobController:
    def __init__(self, client: ApiClient, factory: SharedInformerFactory, *,
                 registry: CollectorRegistry, clock: Callable[[], datetime] = _now) -> None:
        self.client = client
        self.clock = clock
        self.cronjobs = factory.informer(R.CRONJOBS)
        self.jobs = factory.informer(R.JOBS, indexers={BY_CONTROLLER: by_controller_uid})
        self.queue = WorkQueue("cronjob")
        self.events = EventRecorder(client, "cronjob-controller")
        self.created = Counter("cronjob_jobs_created", "Jobs created by the CronJob controller.",
                               registry=registry)
        self.cronjobs.add_handlers(on_add=self._enqueue, on_update=lambda old, new: self._enqueue(new))
        self.jobs.add_handlers(on_add=self._job_changed, on_update=lambda old, new: self._job_changed(new),
                               on_delete=self._job_changed)

    def _enqueue(self, cj: Obj) -> None:
        self.queue.add(object_key(cj))

    def _job_changed(self, job: Obj) -> None:
        ref = controller_ref(job)
        if ref is None or ref.get("kind") != "CronJob":
            return
        cj = self.cronjobs.store.get_object(str(ref.get("name", "")), nested(job, "metadata", "namespace"))
        if cj is not None and nested(cj, "metadata", "uid") == ref.get("uid"):
            self.queue.add(object_key(cj))

    def _emit(self, cj: Obj, events: list[plan.Event]) -> None:
        for event_type, reason, message in events:
            self.events.event(cj, event_type, reason, message)

    async def sync(self, key: str) -> None:
        cj = self.cronjobs.store.get(key)
        if cj is None:
            return
        jobs = self.jobs.store.by_index(BY_CONTROLLER, str(cj["metadata"].get("uid")))
        kids = plan.children(cj, jobs)
        if any(reason == "UnexpectedJob" for _, reason, _ in kids.events):
            cj = await self._fresh(key) or cj  # our own status update may not be cached yet
            kids = plan.children(cj, jobs)
        self._emit(cj, kids.events)
        status = await self._drop_missing(cj, kids)
        requeue = None
        if not nested(cj, "metadata", "deletionTimestamp"):
            status, requeue = await self._schedule(cj, status)
            status = await self._clean_history(cj, status)
        if status != (cj.get("status") or {}):
            await self.client.update_status(R.CRONJOBS, {**cj, "status": status})
        if requeue is not None:
            self.queue.add_after(key, max(0.0, requeue))

    async def _fresh(self, key: str) -> Obj | None:
        namespace, name = split_key(key)
        try:
            return await self.client.get(R.CRONJOBS, name, namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def _drop_missing(self, cj: Obj, kids: plan.Children) -> Obj:
        """Active Jobs the cache lacks: asked of the API server before they are dropped."""
        status = kids.status
        for ref in kids.missing:
            try:
                await self.client.get(R.JOBS, str(ref.get("name")), ref.get("namespace"))
                continue
            except ApiError as exc:
                if exc.code != 404:
                    raise
            self.events.event(cj, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
            left = [r for r in status.get("active") or [] if r.get("uid") != ref.get("uid")]
            if left:
                status["active"] = left
            else:
                status.pop("active", None)
        return status

    async def _schedule(self, cj: Obj, status: Obj) -> tuple[Obj, float | None]:
        schedule, problem = plan.schedule_of(cj)
        if schedule is None:
            self._emit(cj, [problem] if problem else [])
            return status, None
        now = self.clock()
        decision = plan.decide(cj, status, now, schedule)
        self._emit(cj, decision.events)
        if decision.create is None or decision.scheduled is None:
            return status, decision.requeue_after
        for ref in decision.replace:
            await self._delete_job(cj, str(ref.get("name")), ref.get("namespace"))
            status["active"] = [r for r in status.get("active") or [] if r.get("uid") != ref.get("uid")]
        job = await self._create(cj, decision.create)
        if job is None:
            return status, decision.requeue_after
        return plan.started(cj, status, job, decision.scheduled, schedule, now)

    async def _create(self, cj: Obj, job: Obj) -> Obj | None:
        namespace = cj["metadata"].get("namespace")
        try:
            created = await self.client.create(R.JOBS, job, namespace)
        except ApiError as exc:
            if exc.code != 409:
                self.events.event(cj, "Warning", "FailedCreate", f"Error creating job: {exc.message}")
                raise
            existing = await self.client.get(R.JOBS, job["metadata"]["name"], namespace)
            ref = controller_ref(existing) or {}
            if ref.get("uid") != cj["metadata"].get("uid"):
                return None  # someone else's Job of that name
            if any(r.get("uid") == nested(existing, "metadata", "uid")
                   for r in nested(cj, "status", "active") or []):
                return None
            return existing
        self.created.inc()
        self.events.event(cj, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}")
        log.info("created job %s", created["metadata"]["name"], extra={"key": object_key(cj)})
        return created

    async def _delete_job(self, cj: Obj, name: str, namespace: str | None) -> bool:
        try:
            await self.client.delete(R.JOBS, name, namespace, propagation_policy=BACKGROUND)
        except ApiError as exc:
            if exc.code == 404:
                return True
            self.events.event(cj, "Warning", "FailedDelete", f"Deleted job: {exc.message}")
            return False
        self.events.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {name}")
        return True

    async def _clean_history(self, cj: Obj, status: Obj) -> Obj:
        jobs = self.jobs.store.by_index(BY_CONTROLLER, str(cj["metadata"].get("uid")))
        for job in plan.history_to_delete(cj, jobs):
            meta = job["metadata"]
            if await self._delete_job(cj, meta["name"], meta.get("namespace")):
                left = [r for r in status.get("active") or [] if r.get("uid") != meta.get("uid")]
                if left:
                    status["active"] = left
                else:
                    status.pop("active", None)
        return status
