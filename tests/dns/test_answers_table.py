"""Table tests against the real server on loopback: (qname, qtype, rcode, answers)."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from dnslib import QTYPE, RCODE

from services.dns import DnsServer

from .conftest import answers, query

SOA = ("SOA", "ns.dns.cluster.local. hostmaster.cluster.local. 7200 1800 86400 5")
HEADLESS_SRV = [
    ("SRV", "0 33 8080 10-1-0-3.headless.default.svc.cluster.local."),
    ("SRV", "0 33 8080 web-0.headless.default.svc.cluster.local."),
    ("SRV", "0 33 8080 web-1.headless.default.svc.cluster.local."),
]


class Case(NamedTuple):
    id: str
    qname: str
    qtype: str
    rcode: str
    answers: list[tuple[str, str]]


CASES = [
    Case("cluster-ip", "mysvc.default.svc.cluster.local", "A", "NOERROR", [("A", "10.96.0.10")]),
    Case("mixed-case", "MySvc.DEFAULT.svc.Cluster.Local", "A", "NOERROR", [("A", "10.96.0.10")]),
    Case("short-form", "mysvc.default.svc", "A", "NOERROR", [("A", "10.96.0.10")]),
    Case("short-form-unknown", "nope.default.svc", "A", "NXDOMAIN", []),
    Case("aaaa-nodata", "mysvc.default.svc.cluster.local", "AAAA", "NOERROR", []),
    Case("any", "mysvc.default.svc.cluster.local", "ANY", "NOERROR",
         [("A", "10.96.0.10"), ("SRV", "0 50 53 mysvc.default.svc.cluster.local."),
          ("SRV", "0 50 80 mysvc.default.svc.cluster.local.")]),
    Case("dual-stack-a", "api.prod.svc.cluster.local", "A", "NOERROR", [("A", "10.96.1.1")]),
    Case("dual-stack-aaaa", "api.prod.svc.cluster.local", "AAAA", "NOERROR",
         [("AAAA", "fd00::1:1")]),
    Case("unknown-service", "nope.default.svc.cluster.local", "A", "NXDOMAIN", []),
    Case("unknown-namespace", "mysvc.nope.svc.cluster.local", "A", "NXDOMAIN", []),
    Case("namespace-exists", "default.svc.cluster.local", "A", "NOERROR", []),
    Case("namespace-missing", "nope.svc.cluster.local", "A", "NXDOMAIN", []),
    Case("svc-subtree", "svc.cluster.local", "A", "NOERROR", []),
    Case("too-deep", "a.b._c.mysvc.default.svc.cluster.local", "A", "NXDOMAIN", []),
    Case("unknown-in-zone", "foo.cluster.local", "A", "NXDOMAIN", []),
    Case("headless-ready-only", "headless.default.svc.cluster.local", "A", "NOERROR",
         [("A", "10.1.0.1"), ("A", "10.1.0.2"), ("A", "10.1.0.3")]),
    Case("headless-hostname", "web-0.headless.default.svc.cluster.local", "A", "NOERROR",
         [("A", "10.1.0.1")]),
    Case("headless-dashed-ip", "10-1-0-3.headless.default.svc.cluster.local", "A", "NOERROR",
         [("A", "10.1.0.3")]),
    Case("headless-not-ready-hostname", "web-3.headless.default.svc.cluster.local", "A",
         "NXDOMAIN", []),
    Case("headless-unknown-hostname", "web-9.headless.default.svc.cluster.local", "A",
         "NXDOMAIN", []),
    Case("publish-not-ready", "pub.default.svc.cluster.local", "A", "NOERROR",
         [("A", "10.1.1.1")]),
    Case("srv-cluster-ip", "_http._tcp.mysvc.default.svc.cluster.local", "SRV", "NOERROR",
         [("SRV", "0 100 80 mysvc.default.svc.cluster.local.")]),
    Case("srv-udp-port", "_dns._udp.mysvc.default.svc.cluster.local", "SRV", "NOERROR",
         [("SRV", "0 100 53 mysvc.default.svc.cluster.local.")]),
    Case("srv-wrong-protocol", "_http._udp.mysvc.default.svc.cluster.local", "SRV",
         "NXDOMAIN", []),
    Case("srv-unknown-port", "_grpc._tcp.mysvc.default.svc.cluster.local", "SRV",
         "NXDOMAIN", []),
    Case("srv-name-asked-for-a", "_http._tcp.mysvc.default.svc.cluster.local", "A",
         "NOERROR", []),
    Case("srv-protocol-parent", "_tcp.mysvc.default.svc.cluster.local", "SRV", "NOERROR", []),
    Case("srv-headless", "_http._tcp.headless.default.svc.cluster.local", "SRV", "NOERROR",
         HEADLESS_SRV),
    Case("ptr-cluster-ip", "10.0.96.10.in-addr.arpa", "PTR", "NOERROR",
         [("PTR", "mysvc.default.svc.cluster.local.")]),
    Case("ptr-endpoint-hostname", "1.0.1.10.in-addr.arpa", "PTR", "NOERROR",
         [("PTR", "web-0.headless.default.svc.cluster.local.")]),
    Case("ptr-endpoint-no-hostname", "3.0.1.10.in-addr.arpa", "PTR", "NOERROR",
         [("PTR", "10-1-0-3.headless.default.svc.cluster.local.")]),
    Case("ptr-ipv6", "1.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
         "PTR", "NOERROR", [("PTR", "api.prod.svc.cluster.local.")]),
    Case("ptr-not-ready-endpoint", "4.0.1.10.in-addr.arpa", "PTR", "REFUSED", []),
    Case("ptr-foreign", "9.9.9.9.in-addr.arpa", "PTR", "REFUSED", []),
    Case("pod-ipv4", "10-2-3-4.default.pod.cluster.local", "A", "NOERROR", [("A", "10.2.3.4")]),
    Case("pod-ipv6", "fd00--5.default.pod.cluster.local", "AAAA", "NOERROR",
         [("AAAA", "fd00::5")]),
    Case("pod-ipv4-asked-aaaa", "10-2-3-4.default.pod.cluster.local", "AAAA", "NOERROR", []),
    Case("pod-bad-address", "10-2-3-999.default.pod.cluster.local", "A", "NXDOMAIN", []),
    Case("apex-soa", "cluster.local", "SOA", "NOERROR", [SOA]),
    Case("apex-ns", "cluster.local", "NS", "NOERROR", [("NS", "ns.dns.cluster.local.")]),
    Case("apex-a", "cluster.local", "A", "NOERROR", []),
    Case("nameserver-a", "ns.dns.cluster.local", "A", "NOERROR", [("A", "10.96.0.53")]),
    Case("dns-version", "dns-version.cluster.local", "TXT", "NOERROR", [("TXT", '"1.1.0"')]),
    Case("external-name", "ext.default.svc.cluster.local", "A", "NOERROR",
         [("CNAME", "example.org.")]),
    Case("external-name-aaaa", "ext.default.svc.cluster.local", "AAAA", "NOERROR",
         [("CNAME", "example.org.")]),
    Case("external-name-upper-case-query", "EXT.default.svc.cluster.local", "A", "NOERROR",
         [("CNAME", "example.org.")]),
    Case("outside-zone", "example.com", "A", "REFUSED", []),
    Case("outside-zone-suffix", "cluster.local.example.com", "A", "REFUSED", []),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_answer(server: DnsServer, case: Case) -> None:
    reply = await query(server.port, case.qname, case.qtype)

    assert RCODE.get(reply.header.rcode) == case.rcode
    assert answers(reply) == sorted(case.answers)
    assert str(reply.q.qname).rstrip(".") == case.qname  # case echoed as asked
    in_zone = case.rcode != "REFUSED"
    assert reply.header.aa == int(in_zone)
    if in_zone:
        assert all(rr.ttl == 5 for rr in reply.rr)
    if in_zone and not case.answers:
        # Negative answers carry the SOA of the apex they were matched under.
        apex = "svc." if case.qname.endswith(".svc") else "cluster.local."
        assert [(str(rr.rname), QTYPE.get(rr.rtype)) for rr in reply.auth] == [(apex, "SOA")]
    else:
        assert reply.auth == []


async def test_srv_headless_glue(server: DnsServer) -> None:
    reply = await query(server.port, "_http._tcp.headless.default.svc.cluster.local", "SRV")
    glue = sorted((str(rr.rname), str(rr.rdata)) for rr in reply.ar if rr.rtype == QTYPE.A)
    assert glue == [
        ("10-1-0-3.headless.default.svc.cluster.local.", "10.1.0.3"),
        ("web-0.headless.default.svc.cluster.local.", "10.1.0.1"),
        ("web-1.headless.default.svc.cluster.local.", "10.1.0.2"),
    ]


async def test_apex_ns_glue(server: DnsServer) -> None:
    reply = await query(server.port, "cluster.local", "NS")
    glue = [(str(rr.rname), str(rr.rdata)) for rr in reply.ar if rr.rtype == QTYPE.A]
    assert glue == [("ns.dns.cluster.local.", "10.96.0.53")]
