"""Prometheus metrics of the API server, in a registry of its own per app."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


@dataclass
class ApiMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    watchers: Gauge
    watch_events: Counter
    _children: dict[tuple[str, str, int], tuple[Any, Any]] = field(default_factory=dict)

    def record(self, verb: str, resource: str, code: int, seconds: float | None) -> None:
        """Count a request and (unless None) observe its latency; label lookups are done
        once per (verb, resource, code), not on every request."""
        key = (verb, resource, code)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(verb, resource, str(code)),
                                              self.latency.labels(verb, resource))
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)

    @classmethod
    def create(cls, batcher: Any = None) -> ApiMetrics:
        reg = CollectorRegistry()
        if batcher is not None:
            reg.register(_BatcherCollector(batcher))
        return cls(
            registry=reg,
            requests=Counter("apiserver_request_total", "Requests by verb, resource and code",
                             ["verb", "resource", "code"], registry=reg),
            latency=Histogram("apiserver_request_duration_seconds",
                              "Request latency by verb and resource", ["verb", "resource"],
                              buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5),
                              registry=reg),
            watchers=Gauge("apiserver_registered_watchers", "Current watchers by resource",
                           ["resource"], registry=reg),
            watch_events=Counter("apiserver_watch_events_total", "Watch events sent",
                                 ["resource"], registry=reg),
        )


class _BatcherCollector(Collector):
    """etcd transactions sent and the writes they carried (their ratio is the mean group
    commit size; see `etcd.TxnBatcher`)."""

    def __init__(self, batcher: Any) -> None:
        self.batcher = batcher

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily("apiserver_etcd_transactions", "etcd write transactions sent",
                                  value=self.batcher.transactions)
        yield CounterMetricFamily("apiserver_etcd_transaction_writes",
                                  "Object writes carried by those transactions",
                                  value=self.batcher.writes)
        yield CounterMetricFamily("apiserver_etcd_stalled_transaction_bypasses",
                                  "Write transactions sent past one that had no answer for a while "
                                  "(an etcd leader lost mid-write)", value=self.batcher.stalls)
