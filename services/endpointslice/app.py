"""The process: the three controllers kube-controller-manager runs for a Service's endpoints,
over one informer factory (one watch per kind for the process) and one health server.

- `controller.EndpointSliceController`: slices from the pods of Services with a selector;
- `endpoints_controller.EndpointsController`: the core/v1 Endpoints of those Services;
- `mirroring.MirroringController`: slices mirrored from the Endpoints users write for
  Services without a selector.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from kubecore.client.rest import ApiClient
from kubecore.controller.health import HealthServer
from kubecore.controller.leaderelection import LeaderElector
from kubecore.controller.run import run_controller
from kubecore.informer.factory import SharedInformerFactory
from services.endpointslice.controller import EndpointSliceController
from services.endpointslice.endpoints_controller import EndpointsController
from services.endpointslice.mirroring import MirroringController
from services.endpointslice.planner import MAX_ENDPOINTS_PER_SLICE


class EndpointsManager:
    def __init__(self, client: ApiClient, *, workers: int = 4,
                 max_endpoints: int = MAX_ENDPOINTS_PER_SLICE, endpoints_workers: int = 4,
                 mirroring_workers: int = 4, mirroring_max_endpoints_per_subset: int = 1000) -> None:
        self.factory = SharedInformerFactory(client)
        self.registry = CollectorRegistry()
        self.slices = EndpointSliceController(client, factory=self.factory, workers=workers,
                                              max_endpoints=max_endpoints, registry=self.registry)
        self.endpoints = EndpointsController(client, self.factory, workers=endpoints_workers)
        self.mirroring = MirroringController(client, self.factory, workers=mirroring_workers,
                                             max_per_subset=mirroring_max_endpoints_per_subset)

    async def run(self, *, health_host: str = "127.0.0.1", health_port: int | None = None,
                  stop: Any = None, handle_signals: bool = True,
                  on_ready: Callable[[HealthServer | None], None] | None = None,
                  elector: LeaderElector | None = None) -> None:
        await run_controller(name="endpointslice", informers=self.factory,
                             pools=[*self.slices.pools(), *self.endpoints.pools(),
                                    *self.mirroring.pools()],
                             registry=self.registry, health_host=health_host,
                             health_port=health_port, stop=stop, handle_signals=handle_signals,
                             on_ready=on_ready, elector=elector)
