"""Cluster DNS: answers for Services and EndpointSlices in the cluster zone.

Layers, each only using the ones above it:

- ``records``  watch side: slim records from Service/EndpointSlice dicts, indexed by name and
               by IP (``RecordIndex``); the answering side reads them via ``RecordReader``.
- ``qname``    query names parsed into a ``QueryName`` struct (pure).
- ``answers``  ``resolve``: a QueryName + reader -> records of the response (pure).
- ``wire``     hand-rolled header/question reading for the cache key, response packing.
- ``cache``    finished responses keyed by (qname, qtype, qclass, variant), each dropped when
               the record it was built from changes (per-name versions from the index).
- ``handler``  bytes in, bytes out: cache hit path, miss path, errors. No I/O.
- ``forward``  upstream forwarding for names outside the zone (UDP, TCP on truncation).
- ``tcp``      DNS-over-TCP timeouts and connection caps (``TcpConnections``).
- ``server``   ``DnsServer``: UDP + TCP sockets on one port.
- ``metrics``  Prometheus collector; ``readiness``  what /readyz means here (records synced);
               the /healthz /readyz /metrics app is kubecore's (``kubecore.controller.health``).
- ``informers`` ``ClusterWatch``: kubecore informers on Services and EndpointSlices feeding
               the ``RecordIndex``.

Integration: informers call ``RecordIndex.upsert_service`` / ``delete_service`` /
``upsert_endpointslice`` / ``delete_endpointslice`` and ``mark_synced`` once listed.
"""

from .forward import parse_upstream
from .metrics import dns_registry
from .readiness import records_synced
from .records import RecordIndex, RecordReader
from .server import DnsServer

__all__ = [
    "DnsServer",
    "RecordIndex",
    "RecordReader",
    "dns_registry",
    "parse_upstream",
    "records_synced",
]
