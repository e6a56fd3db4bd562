"""Query-name parsing table: labels -> QueryName, with no index involved."""

from __future__ import annotations

import pytest

from services.dns.qname import Kind, QueryName, parse_qname

ZONE = ("cluster", "local")
Z = ZONE
S = ("svc",)

CASES = [
    ("apex", "cluster.local", QueryName(Kind.APEX, Z)),
    ("service", "a.ns.svc.cluster.local", QueryName(Kind.SERVICE, Z, namespace="ns", service="a")),
    ("short-service", "a.ns.svc", QueryName(Kind.SERVICE, S, namespace="ns", service="a")),
    ("short-apex", "svc", QueryName(Kind.APEX, S)),
    ("short-pod-is-not-ours", "1-2-3-4.ns.pod", QueryName(Kind.OUTSIDE)),
    ("namespace", "ns.svc.cluster.local", QueryName(Kind.NAMESPACE, Z, namespace="ns")),
    ("svc", "svc.cluster.local", QueryName(Kind.EMPTY, Z)),
    ("endpoint", "web-0.a.ns.svc.cluster.local",
     QueryName(Kind.ENDPOINT, Z, namespace="ns", service="a", endpoint="web-0")),
    ("srv", "_http._tcp.a.ns.svc.cluster.local",
     QueryName(Kind.SRV, Z, namespace="ns", service="a", port="http", protocol="tcp")),
    ("srv-parent", "_tcp.a.ns.svc.cluster.local",
     QueryName(Kind.SRV, Z, namespace="ns", service="a", protocol="tcp")),
    ("srv-bare-underscore", "_._tcp.a.ns.svc.cluster.local", QueryName(Kind.UNKNOWN, Z)),
    ("too-deep", "x.y.z.a.ns.svc.cluster.local", QueryName(Kind.UNKNOWN, Z)),
    ("pod", "10-0-0-1.ns.pod.cluster.local",
     QueryName(Kind.POD, Z, namespace="ns", address="10.0.0.1")),
    ("pod-ipv6", "fd00--1.ns.pod.cluster.local",
     QueryName(Kind.POD, Z, namespace="ns", address="fd00::1")),
    ("pod-bad", "10-0-0-300.ns.pod.cluster.local", QueryName(Kind.UNKNOWN, Z)),
    ("pod-namespace", "ns.pod.cluster.local", QueryName(Kind.EMPTY, Z)),
    ("nameserver", "ns.dns.cluster.local", QueryName(Kind.NAMESERVER, Z)),
    ("dns-version", "dns-version.cluster.local", QueryName(Kind.DNS_VERSION, Z)),
    ("unknown", "foo.cluster.local", QueryName(Kind.UNKNOWN, Z)),
    ("outside", "example.com", QueryName(Kind.OUTSIDE)),
    ("root", "", QueryName(Kind.OUTSIDE)),
    ("zone-as-prefix", "cluster.local.example", QueryName(Kind.OUTSIDE)),
    ("reverse-v4", "4.3.2.10.in-addr.arpa",
     QueryName(Kind.REVERSE, ("in-addr", "arpa"), address="10.2.3.4")),
    ("reverse-v4-partial", "3.2.10.in-addr.arpa", QueryName(Kind.OUTSIDE)),
    ("reverse-v4-bad", "999.3.2.10.in-addr.arpa", QueryName(Kind.OUTSIDE)),
    ("reverse-v6", ".".join("1" + "0" * 27 + "00df") + ".ip6.arpa",
     QueryName(Kind.REVERSE, ("ip6", "arpa"), address="fd00::1")),
    ("reverse-v6-bad", ".".join("g" + "0" * 31) + ".ip6.arpa", QueryName(Kind.OUTSIDE)),
]


@pytest.mark.parametrize("qname,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_qname(qname: str, expected: QueryName) -> None:
    labels = tuple(qname.split(".")) if qname else ()
    assert parse_qname(labels, ZONE) == expected


def test_custom_zone() -> None:
    zone = ("k8s", "example", "org")
    assert parse_qname(("a", "ns", "svc", "k8s", "example", "org"), zone) == QueryName(
        Kind.SERVICE, zone, namespace="ns", service="a"
    )
    assert parse_qname(("a", "ns", "svc", "cluster", "local"), zone).kind is Kind.OUTSIDE
