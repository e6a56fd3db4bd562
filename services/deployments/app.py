"""Both controllers over one informer factory: one watch per kind for the process."""
from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from kubecore.client.rest import ApiClient
from kubecore.controller.run import WorkerPool, run_controller
from kubecore.informer.factory import SharedInformerFactory
from services.deployments.deployment import DeploymentController
from services.deployments.replicaset import ReplicaSetController


class DeploymentsManager:
    def __init__(self, client: ApiClient, *, replicaset_workers: int = 5,
                 deployment_workers: int = 5) -> None:
        self.factory = SharedInformerFactory(client)
        self.registry = CollectorRegistry()
        self.replicasets = ReplicaSetController(client, self.factory, registry=self.registry)
        self.deployments = DeploymentController(client, self.factory, registry=self.registry)
        self.pools = [WorkerPool(self.replicasets.queue, self.replicasets.sync, replicaset_workers),
                      WorkerPool(self.deployments.queue, self.deployments.sync, deployment_workers)]

    async def run(self, *, health_port: int | None = None, **kwargs: Any) -> None:
        try:
            await run_controller(name="deployments", informers=self.factory, pools=self.pools,
                                 registry=self.registry, health_port=health_port, **kwargs)
        finally:
            await self.replicasets.events.close()
            await self.deployments.events.close()
