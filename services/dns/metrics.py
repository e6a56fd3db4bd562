"""Prometheus view of the query counters.

The hot path only bumps plain ints and dict entries; this collector turns them into metric
families at scrape time. Query types outside a fixed set are reported as "other", so a client
sending random types cannot blow up label cardinality.
"""

from __future__ import annotations

from collections.abc import Iterator

from dnslib import QTYPE, RCODE
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .cache import ResponseCache
from .handler import QueryStats
from .records import RecordReader
from .tcp import TcpConnections

REPORTED_TYPES = frozenset(
    [QTYPE.A, QTYPE.AAAA, QTYPE.SRV, QTYPE.PTR, QTYPE.SOA, QTYPE.NS, QTYPE.CNAME, QTYPE.TXT,
     QTYPE.MX, QTYPE.ANY, QTYPE.HTTPS]
)
RCODE_NAMES = {16: "BADVERS"}


def _type_label(qtype: int) -> str:
    if qtype == 0:
        return "none"  # the question could not be read
    return str(QTYPE.get(qtype)) if qtype in REPORTED_TYPES else "other"


def _rcode_label(rcode: int) -> str:
    return RCODE_NAMES.get(rcode) or str(RCODE.get(rcode, f"RCODE{rcode}"))


class DnsCollector(Collector):
    def __init__(self, stats: QueryStats, cache: ResponseCache, reader: RecordReader,
                 tcp: TcpConnections | None = None) -> None:
        self._stats = stats
        self._cache = cache
        self._reader = reader
        self._tcp = tcp

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        queries = CounterMetricFamily(
            "minicluster_dns_queries",
            "DNS responses sent, by query type and response code.",
            labels=["type", "rcode"],
        )
        merged: dict[tuple[str, str], int] = {}
        for (qtype, rcode), count in list(stats.by_type_rcode.items()):
            key = (_type_label(qtype), _rcode_label(rcode))
            merged[key] = merged.get(key, 0) + count
        for labels, count in sorted(merged.items()):
            queries.add_metric(list(labels), count)
        yield queries
        yield CounterMetricFamily(
            "minicluster_dns_cache_hits", "Queries answered from the response cache.",
            value=stats.cache_hits,
        )
        yield CounterMetricFamily(
            "minicluster_dns_cache_misses", "Queries that missed the response cache.",
            value=stats.cache_misses,
        )
        yield CounterMetricFamily(
            "minicluster_dns_dropped", "Packets dropped unanswered (malformed, or send failed).",
            value=stats.dropped,
        )
        yield CounterMetricFamily(
            "minicluster_dns_forwarded", "Queries forwarded upstream.", value=stats.forwarded
        )
        yield CounterMetricFamily(
            "minicluster_dns_forward_failures", "Forwarded queries no upstream answered.",
            value=stats.forward_failures,
        )
        yield CounterMetricFamily(
            "minicluster_dns_internal_errors", "Queries that hit a bug and got SERVFAIL.",
            value=stats.internal_errors,
        )
        yield GaugeMetricFamily(
            "minicluster_dns_cache_entries", "Responses held in the cache.", value=len(self._cache)
        )
        yield GaugeMetricFamily(
            "minicluster_dns_synced", "1 once the record caches have synced.",
            value=int(self._reader.synced),
        )
        if self._tcp is not None:
            yield from self._tcp_metrics(self._tcp)

    @staticmethod
    def _tcp_metrics(tcp: TcpConnections) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "minicluster_dns_tcp_connections", "Open DNS-over-TCP connections.", value=len(tcp)
        )
        yield CounterMetricFamily(
            "minicluster_dns_tcp_evicted",
            "Waiting TCP connections closed to make room for a new one at a cap.",
            value=tcp.evicted,
        )
        yield CounterMetricFamily(
            "minicluster_dns_tcp_refused",
            "TCP connections refused because every connection at the cap was busy.",
            value=tcp.refused,
        )


def dns_registry(
    stats: QueryStats, cache: ResponseCache, reader: RecordReader, tcp: TcpConnections | None = None
) -> CollectorRegistry:
    """A registry of its own, so several servers (tests, workers) never collide globally."""
    registry = CollectorRegistry()
    registry.register(DnsCollector(stats, cache, reader, tcp))
    return registry
