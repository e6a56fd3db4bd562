"""Prometheus metrics of the API server, in a registry of its own per app."""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ApiMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    watchers: Gauge
    watch_events: Counter

    @classmethod
    def create(cls) -> "ApiMetrics":
        reg = CollectorRegistry()
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
