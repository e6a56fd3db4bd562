"""The controller over its informer factory, as the process runs it."""
from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from kubecore.client.rest import ApiClient
from kubecore.controller.run import WorkerPool, run_controller
from kubecore.informer.factory import SharedInformerFactory
from services.statefulset.controller import StatefulSetController


class StatefulSetManager:
    def __init__(self, client: ApiClient, *, workers: int = 5) -> None:
        self.factory = SharedInformerFactory(client)
        self.registry = CollectorRegistry()
        self.controller = StatefulSetController(client, self.factory, registry=self.registry)
        self.pools = [WorkerPool(self.controller.queue, self.controller.sync, workers)]

    async def run(self, *, health_port: int | None = None, **kwargs: Any) -> None:
        try:
            await run_controller(name="statefulset", informers=self.factory, pools=self.pools,
                                 registry=self.registry, health_port=health_port, **kwargs)
        finally:
            await self.controller.events.close()
