"""Pure answering: a parsed query name + the record reader -> the records of a response.

No sockets, no wire formats beyond dnslib resource records, so these rules get table tests.
Semantics follow the Kubernetes DNS spec and CoreDNS: a name that exists without the asked
type gets NOERROR/NODATA, a name that cannot exist gets NXDOMAIN, both with the SOA; before the
caches have synced every name we own gets SERVFAIL rather than a possibly wrong NXDOMAIN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dnslib import AAAA, CNAME, NS, PTR, QTYPE, RCODE, RD, RR, SOA, SRV, TXT, A, DNSLabel

from .qname import SHORT_ORIGIN, Kind, Labels, QueryName
from .records import (
    Dependency,
    EndpointRecord,
    RecordReader,
    ServiceRecord,
    address_dependency,
    namespace_dependency,
    service_dependency,
)

DNS_SCHEMA_VERSION = "1.1.0"
NAMESERVER_SERVICE = ("kube-system", "kube-dns")


@dataclass(frozen=True, slots=True)
class ZoneSettings:
    zone: Labels  # e.g. ("cluster", "local")
    ttl: int = 5
    serial: int = 1

    def name(self, *labels: str) -> DNSLabel:
        return DNSLabel([label.encode() for label in (*labels, *self.zone)])


@dataclass(slots=True)
class Resolution:
    rcode: int
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    authoritative: bool = True
    outside: bool = False  # not our name: the caller forwards it or refuses


@dataclass(slots=True)
class Node:
    """The records one name owns, plus glue to add when SRV or NS records are answered."""

    records: list[tuple[int, RD]] = field(default_factory=list)
    glue: list[RR] = field(default_factory=list)


OUTSIDE = Resolution(RCODE.REFUSED, authoritative=False, outside=True)


def resolve(
    name: QueryName, qtype: int, owner: DNSLabel, reader: RecordReader, zone: ZoneSettings
) -> Resolution:
    if name.kind is Kind.OUTSIDE:
        return OUTSIDE
    if not reader.synced:
        return Resolution(RCODE.SERVFAIL, authoritative=False)
    node = _NODES[name.kind](name, reader, zone, qtype)
    if node is None:
        if name.kind is Kind.REVERSE:
            return OUTSIDE  # not a cluster address: somebody else's reverse zone
        return Resolution(RCODE.NXDOMAIN, authority=[_soa(name.origin, zone)])
    cnames = [rd for rtype, rd in node.records if rtype == QTYPE.CNAME]
    if cnames and qtype != QTYPE.CNAME:
        matching = [(QTYPE.CNAME, rd) for rd in cnames]
    else:
        matching = [(t, rd) for t, rd in node.records if t == qtype or qtype == QTYPE.ANY]
    if not matching:
        return Resolution(RCODE.NOERROR, authority=[_soa(name.origin, zone)])
    answer = [RR(owner, rtype, rdata=rd, ttl=zone.ttl) for rtype, rd in matching]
    wants_glue = any(t in (QTYPE.SRV, QTYPE.NS) for t, _ in matching)
    return Resolution(RCODE.NOERROR, answer=answer, additional=node.glue if wants_glue else [])


def dependency(name: QueryName) -> Dependency | None:
    """The one piece of the index an answer for ``name`` reads (None: the zone layout only).

    The response cache keeps an answer while this piece is unchanged, so this must name
    everything the node builders below look at; tests compare cached and uncached answers
    across random changes to hold it to that.
    """
    kind = name.kind
    if kind in (Kind.SERVICE, Kind.ENDPOINT, Kind.SRV):
        return service_dependency(name.namespace, name.service)
    if kind in (Kind.APEX, Kind.NAMESERVER):
        return service_dependency(*NAMESERVER_SERVICE)  # NS glue / ns.dns addresses
    if kind is Kind.NAMESPACE:
        return namespace_dependency(name.namespace)
    if kind is Kind.REVERSE:
        return address_dependency(name.address)
    return None


def _soa(origin: Labels, zone: ZoneSettings) -> RR:
    # The short form "<svc>.<ns>.svc." lives under "svc."; negative answers name that apex.
    apex = DNSLabel([label.encode() for label in origin])
    soa = SOA(
        zone.name("ns", "dns"),
        zone.name("hostmaster"),
        (zone.serial, 7200, 1800, 86400, zone.ttl),
    )
    return RR(apex, QTYPE.SOA, rdata=soa, ttl=zone.ttl)


def _address_records(addresses: tuple[str, ...] | list[str]) -> list[tuple[int, RD]]:
    out: list[tuple[int, RD]] = []
    for address in addresses:  # normalised by the index, so a colon means IPv6
        if ":" not in address:
            out.append((QTYPE.A, A(address)))
        else:
            out.append((QTYPE.AAAA, AAAA(address)))
    return out


def _glue(target: DNSLabel, addresses: tuple[str, ...] | list[str], ttl: int) -> list[RR]:
    return [RR(target, t, rdata=rd, ttl=ttl) for t, rd in _address_records(addresses)]


def _srv_records(
    service: ServiceRecord,
    endpoints: tuple[EndpointRecord, ...],
    zone: ZoneSettings,
    *,
    port_name: str | None,
    protocol: str | None,
) -> Node:
    """SRV to the service name (ClusterIP) or to each endpoint's own name (headless)."""

    def wanted(port_name_: str, protocol_: str) -> bool:
        return (port_name is None or port_name == port_name_) and (
            protocol is None or protocol == protocol_
        )

    node = Node()
    base = (service.name, service.namespace, "svc")
    if service.headless:
        targets: list[tuple[Any, int, tuple[str, ...]]] = [
            (zone.name(ep.label, *base), port.port, (ep.address,))
            for ep in endpoints
            for port in ep.ports
            if wanted(port.name, port.protocol)
        ]
    else:
        target = zone.name(*base)
        targets = [
            (target, port.port, service.cluster_ips)
            for port in service.ports
            if wanted(port.name, port.protocol)
        ]
    weight = max(1, 100 // len(targets)) if targets else 0
    glued: set[tuple[str, ...]] = set()
    for target, port, addresses in targets:
        node.records.append((QTYPE.SRV, SRV(0, weight, port, target)))
        key = tuple(str(target).split(".")) + tuple(addresses)
        if key not in glued:
            glued.add(key)
            node.glue.extend(_glue(target, addresses, zone.ttl))
    return node


def _service_node(
    name: QueryName, reader: RecordReader, zone: ZoneSettings, qtype: int
) -> Node | None:
    service = reader.service(name.namespace, name.service)
    if service is None:
        return None
    if service.external_name:
        external = DNSLabel(service.external_name)
        return Node([(QTYPE.CNAME, CNAME(external))])
    endpoints = reader.endpoints(name.namespace, name.service)
    if service.headless:
        addresses = [ep.address for ep in endpoints]
        addresses = list(dict.fromkeys(addresses))  # one A per address, even with two labels
    else:
        addresses = list(service.cluster_ips)
    node = Node(_address_records(addresses))
    if qtype in (QTYPE.SRV, QTYPE.ANY):  # SRV records cost more; build them only when asked
        srv = _srv_records(service, endpoints, zone, port_name=None, protocol=None)
        node.records += srv.records
        node.glue = srv.glue
    return node


def _endpoint_node(
    name: QueryName, reader: RecordReader, zone: ZoneSettings, qtype: int
) -> Node | None:
    if reader.service(name.namespace, name.service) is None:
        return None
    addresses = [
        ep.address for ep in reader.endpoints(name.namespace, name.service)
        if ep.label == name.endpoint
    ]
    return Node(_address_records(addresses)) if addresses else None


def _srv_node(
    name: QueryName, reader: RecordReader, zone: ZoneSettings, qtype: int
) -> Node | None:
    service = reader.service(name.namespace, name.service)
    if service is None:
        return None
    endpoints = reader.endpoints(name.namespace, name.service)
    if not name.port:
        # "_tcp.<svc>..." exists as an empty non-terminal when a port uses that protocol.
        ports = [p for ep in endpoints for p in ep.ports] if service.headless else service.ports
        return Node() if any(p.protocol == name.protocol for p in ports) else None
    node = _srv_records(service, endpoints, zone, port_name=name.port, protocol=name.protocol)
    if not node.records and not any(
        p.name == name.port and p.protocol == name.protocol for p in service.ports
    ):
        return None
    return node


def _pod_node(name: QueryName, reader: RecordReader, zone: ZoneSettings, qtype: int) -> Node:
    # "pods insecure" mode, as in CoreDNS's default: the name encodes its own answer.
    return Node(_address_records([name.address]))


def _namespace_node(
    name: QueryName, reader: RecordReader, zone: ZoneSettings, qtype: int
) -> Node | None:
    return Node() if reader.has_namespace(name.namespace) else None


def _nameserver_addresses(reader: RecordReader) -> tuple[str, ...]:
    service = reader.service(*NAMESERVER_SERVICE)
    return service.cluster_ips if service else ()


def _apex_node(name: QueryName, reader: RecordReader, zone: ZoneSettings, qtype: int) -> Node:
    soa = _soa(name.origin, zone)
    if name.origin == SHORT_ORIGIN:
        return Node([(QTYPE.SOA, soa.rdata)])
    nameserver = zone.name("ns", "dns")
    glue = _glue(nameserver, _nameserver_addresses(reader), zone.ttl)
    return Node([(QTYPE.SOA, soa.rdata), (QTYPE.NS, NS(nameserver))], glue)


def _nameserver_node(
    name: QueryName, reader: RecordReader, zone: ZoneSettings, qtype: int
) -> Node:
    return Node(_address_records(_nameserver_addresses(reader)))


def _dns_version_node(
    name: QueryName, reader: RecordReader, zone: ZoneSettings, qtype: int
) -> Node:
    return Node([(QTYPE.TXT, TXT(DNS_SCHEMA_VERSION))])


def _reverse_node(
    name: QueryName, reader: RecordReader, zone: ZoneSettings, qtype: int
) -> Node | None:
    names = reader.names_for_ip(name.address)
    if not names:
        return None
    return Node([(QTYPE.PTR, PTR(zone.name(*n.split(".")))) for n in names])


NodeBuilder = Callable[[QueryName, RecordReader, ZoneSettings, int], Node | None]

_NODES: dict[Kind, NodeBuilder] = {
    Kind.APEX: _apex_node,
    Kind.EMPTY: lambda name, reader, zone, qtype: Node(),
    Kind.NAMESPACE: _namespace_node,
    Kind.SERVICE: _service_node,
    Kind.ENDPOINT: _endpoint_node,
    Kind.SRV: _srv_node,
    Kind.POD: _pod_node,
    Kind.NAMESERVER: _nameserver_node,
    Kind.DNS_VERSION: _dns_version_node,
    Kind.REVERSE: _reverse_node,
    Kind.UNKNOWN: lambda name, reader, zone, qtype: None,
}
