"""The Prometheus collector every controller registers: work-queue depth and cache state.

Read when scraped, from the live queues and informers, so nothing has to be kept up to date.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kubecore.informer.informer import Informer
from kubecore.informer.workqueue import WorkQueue


class ControllerCollector(Collector):
    """Work-queue depth and cache state, read when scraped."""

    def __init__(self, queues: Callable[[], Iterable[WorkQueue]],
                 informers: Callable[[], Iterable[Informer]]) -> None:
        self.queues = queues
        self.informers = informers

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("workqueue_depth", "Keys waiting in the work queue.",
                                  labels=["name"])
        for q in self.queues():
            depth.add_metric([q.name], len(q))
        yield depth
        synced = GaugeMetricFamily("informer_synced", "1 once the informer's cache has synced.",
                                   labels=["informer"])
        objects = GaugeMetricFamily("informer_objects", "Objects in the informer's cache.",
                                    labels=["informer"])
        relists = GaugeMetricFamily("informer_relists", "Lists made by the informer (first included).",
                                    labels=["informer"])
        for inf in self.informers():
            synced.add_metric([inf.name], 1.0 if inf.has_synced() else 0.0)
            objects.add_metric([inf.name], float(len(inf.store)))
            relists.add_metric([inf.name], float(inf.reflector.relists))
        yield synced
        yield objects
        yield relists
