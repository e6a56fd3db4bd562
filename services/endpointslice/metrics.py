"""The controller's Prometheus metrics, on a registry of its own (one per controller, so
several can live in one test process)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.syncs = Counter(
            "endpointslice_syncs", "Service reconciles, by result: noop (nothing to write), "
            "changed (slices written), waiting (cache behind our writes), error.",
            ["result"], registry=registry)
        self.writes = Counter("endpointslice_slice_writes", "EndpointSlice writes, by operation.",
                              ["op"], registry=registry)
        self.echoes = Counter("endpointslice_own_write_echoes",
                              "Slice events recognised as the echo of our own write and not "
                              "reconciled for.", registry=registry)
        self.sync_seconds = Histogram(
            "endpointslice_sync_duration_seconds", "Time to plan and apply one service.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry)
