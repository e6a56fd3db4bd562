"""Query names parsed into a small struct before any lookup (the CoreDNS ``recordRequest`` idea).

Parsing is pure and knows only the zone layout; it never looks at the index. Names arrive as
lower-cased labels. Besides ``<zone>`` we accept the short form ``<svc>.<ns>.svc.`` and the
reverse trees ``in-addr.arpa.``/``ip6.arpa.``.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

Labels = tuple[str, ...]

SHORT_ORIGIN: Labels = ("svc",)
IPV4_REVERSE: Labels = ("in-addr", "arpa")
IPV6_REVERSE: Labels = ("ip6", "arpa")
_HEX = frozenset("0123456789abcdef")


class Kind(enum.Enum):
    APEX = "apex"  # <zone>
    EMPTY = "empty"  # a name that exists only because names below it do
    NAMESPACE = "namespace"  # <ns>.svc.<zone>: exists while the namespace has services
    SERVICE = "service"  # <svc>.<ns>.svc.<zone>
    ENDPOINT = "endpoint"  # <hostname-or-dashed-ip>.<svc>.<ns>.svc.<zone>
    SRV = "srv"  # _<port>._<proto>.<svc>.<ns>.svc.<zone>; port "" for _<proto>.<svc>...
    POD = "pod"  # <dashed-ip>.<ns>.pod.<zone>
    NAMESERVER = "nameserver"  # ns.dns.<zone>
    DNS_VERSION = "dns-version"  # dns-version.<zone>, from the Kubernetes DNS spec
    REVERSE = "reverse"  # a full PTR name for one address
    UNKNOWN = "unknown"  # inside our zone, but no such name can exist
    OUTSIDE = "outside"  # not ours: forward or refuse


@dataclass(frozen=True, slots=True)
class QueryName:
    kind: Kind
    origin: Labels = ()  # the zone the name was matched in, for the SOA of negative answers
    namespace: str = ""
    service: str = ""
    endpoint: str = ""
    port: str = ""
    protocol: str = ""
    address: str = ""  # pod and reverse names: the IP, normalised


def parse_qname(labels: Labels, zone: Labels) -> QueryName:
    n = len(zone)
    if len(labels) >= n and labels[len(labels) - n :] == zone:
        return _parse_in_zone(labels[: len(labels) - n], zone)
    if labels and labels[-1] == "svc":
        if len(labels) == 1:
            return QueryName(Kind.APEX, SHORT_ORIGIN)
        return _parse_svc(labels[:-1], SHORT_ORIGIN)
    if labels[-2:] == IPV4_REVERSE or labels[-2:] == IPV6_REVERSE:
        return _parse_reverse(labels)
    return QueryName(Kind.OUTSIDE)


def _parse_in_zone(rel: Labels, origin: Labels) -> QueryName:
    if not rel:
        return QueryName(Kind.APEX, origin)
    top = rel[-1]
    if top == "svc":
        return _parse_svc(rel[:-1], origin)
    if top == "pod":
        return _parse_pod(rel[:-1], origin)
    if rel == ("ns", "dns"):
        return QueryName(Kind.NAMESERVER, origin)
    if rel == ("dns",):
        return QueryName(Kind.EMPTY, origin)
    if rel == ("dns-version",):
        return QueryName(Kind.DNS_VERSION, origin)
    return QueryName(Kind.UNKNOWN, origin)


def _parse_svc(rest: Labels, origin: Labels) -> QueryName:
    # rest is everything left of "svc": [... , svc-name, namespace]
    if not rest:
        return QueryName(Kind.EMPTY, origin)
    namespace = rest[-1]
    if len(rest) == 1:
        return QueryName(Kind.NAMESPACE, origin, namespace=namespace)
    service = rest[-2]
    if len(rest) == 2:
        return QueryName(Kind.SERVICE, origin, namespace=namespace, service=service)
    first = rest[0]
    if len(rest) == 3:
        if _is_underscored(first):
            return QueryName(
                Kind.SRV, origin, namespace=namespace, service=service, protocol=first[1:]
            )
        return QueryName(
            Kind.ENDPOINT, origin, namespace=namespace, service=service, endpoint=first
        )
    second = rest[1]
    if len(rest) == 4 and _is_underscored(first) and _is_underscored(second):
        return QueryName(
            Kind.SRV,
            origin,
            namespace=namespace,
            service=service,
            port=first[1:],
            protocol=second[1:],
        )
    return QueryName(Kind.UNKNOWN, origin)


def _is_underscored(label: str) -> bool:
    return len(label) > 1 and label[0] == "_"


def _parse_pod(rest: Labels, origin: Labels) -> QueryName:
    if len(rest) <= 1:
        return QueryName(Kind.EMPTY, origin)
    if len(rest) != 2:
        return QueryName(Kind.UNKNOWN, origin)
    address = _undash(rest[0])
    if address is None:
        return QueryName(Kind.UNKNOWN, origin)
    return QueryName(Kind.POD, origin, namespace=rest[1], address=address)


def _undash(label: str) -> str | None:
    """10-1-2-3 -> 10.1.2.3; fd00--1 -> fd00::1 (dashes stand for IPv6 colons)."""
    candidates = (label.replace("-", "."), label.replace("-", ":"))
    for text in candidates:
        try:
            return ipaddress.ip_address(text).compressed
        except ValueError:
            continue
    return None


def _parse_reverse(labels: Labels) -> QueryName:
    origin = labels[-2:]
    digits = labels[:-2]
    try:
        if origin == IPV4_REVERSE:
            if len(digits) != 4 or not all(d.isdigit() and len(d) <= 3 for d in digits):
                return QueryName(Kind.OUTSIDE)
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(
                ".".join(reversed(digits)))
        else:
            if len(digits) != 32 or not all(len(d) == 1 and d in _HEX for d in digits):
                return QueryName(Kind.OUTSIDE)
            hexits = "".join(reversed(digits))
            address = ipaddress.IPv6Address(int(hexits, 16))
    except ValueError:
        return QueryName(Kind.OUTSIDE)
    return QueryName(Kind.REVERSE, origin, address=address.compressed)
