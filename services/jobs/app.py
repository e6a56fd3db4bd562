"""The three controllers over one informer factory: one watch per kind for the process."""
from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from kubecore.client.rest import ApiClient
from kubecore.controller.run import WorkerPool, run_controller
from kubecore.informer.factory import SharedInformerFactory
from services.jobs.cronjob import CronJobController
from services.jobs.job import JobController
from services.jobs.job_plan import DEFAULT_BACKOFF
from services.jobs.ttl import TTLAfterFinishedController


class JobsManager:
    def __init__(self, client: ApiClient, *, job_workers: int = 5, cronjob_workers: int = 5,
                 ttl_workers: int = 5, pod_failure_backoff: float = DEFAULT_BACKOFF) -> None:
        self.factory = SharedInformerFactory(client)
        self.registry = CollectorRegistry()
        self.jobs = JobController(client, self.factory, registry=self.registry,
                                  base_backoff=pod_failure_backoff)
        self.cronjobs = CronJobController(client, self.factory, registry=self.registry)
        self.ttl = TTLAfterFinishedController(client, self.factory, registry=self.registry)
        self.pools = [WorkerPool(self.jobs.queue, self.jobs.sync, job_workers),
                      WorkerPool(self.cronjobs.queue, self.cronjobs.sync, cronjob_workers),
                      WorkerPool(self.ttl.queue, self.ttl.sync, ttl_workers)]

    async def run(self, *, health_port: int | None = None, **kwargs: Any) -> None:
        try:
            await run_controller(name="jobs", informers=self.factory, pools=self.pools,
                                 registry=self.registry, health_port=health_port, **kwargs)
        finally:
            await self.jobs.events.close()
            await self.cronjobs.events.close()
