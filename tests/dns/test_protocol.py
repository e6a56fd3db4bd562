"""Wire-level behaviour: sync gate, EDNS, truncation, case echo, errors, cache invalidation."""

from __future__ import annotations

import struct

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from services.dns import DnsServer, RecordIndex

from .conftest import LOOPBACK, answers, ask, filled_index, query, service


async def test_servfail_until_synced_then_answers() -> None:
    index = filled_index(synced=False)
    dns = DnsServer(index)
    await dns.start(LOOPBACK, 0)
    try:
        for name in ("mysvc.default.svc.cluster.local", "nope.default.svc.cluster.local"):
            reply = await query(dns.port, name)
            assert RCODE.get(reply.header.rcode) == "SERVFAIL"  # never a premature NXDOMAIN
            assert reply.rr == []
        reply = await query(dns.port, "10.0.96.10.in-addr.arpa", "PTR")
        assert RCODE.get(reply.header.rcode) == "SERVFAIL"
        # Outside the zone the sync state does not matter.
        reply = await query(dns.port, "example.com")
        assert RCODE.get(reply.header.rcode) == "REFUSED"

        index.mark_synced()
        reply = await query(dns.port, "mysvc.default.svc.cluster.local")
        assert answers(reply) == [("A", "10.96.0.10")]
        reply = await query(dns.port, "nope.default.svc.cluster.local")
        assert RCODE.get(reply.header.rcode) == "NXDOMAIN"
    finally:
        await dns.stop()


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_query_case_is_echoed_on_cache_hits(server: DnsServer, tcp: bool) -> None:
    first = DNSRecord.question("mysvc.default.svc.cluster.local").pack()
    await ask(server.port, first, tcp=tcp)
    hits = server.stats.cache_hits
    odd = DNSRecord.question("MySvC.dEfAuLt.SVC.cluster.LOCAL")
    odd.header.id = 0xBEEF
    raw = await ask(server.port, odd, tcp=tcp)

    assert server.stats.cache_hits == hits + 1
    assert raw is not None
    question_len = len(odd.pack()) - 12
    assert raw[:2] == b"\xbe\xef"
    assert raw[12 : 12 + question_len] == odd.pack()[12:]  # byte for byte, case included
    reply = DNSRecord.parse(raw)
    assert str(reply.rr[0].rname) == "MySvC.dEfAuLt.SVC.cluster.LOCAL."
    assert answers(reply) == [("A", "10.96.0.10")]


async def test_rd_and_cd_bits_are_echoed(server: DnsServer) -> None:
    for rd, cd in [(1, 0), (0, 1), (1, 1), (0, 0), (1, 0)]:
        q = DNSRecord.question("mysvc.default.svc.cluster.local")
        q.header.rd = rd
        q.header.bitmap = (q.header.bitmap & ~0x10) | (0x10 if cd else 0)
        reply = DNSRecord.parse(await ask(server.port, q))
        assert (reply.header.rd, reply.header.bitmap >> 4 & 1) == (rd, cd)
        assert answers(reply) == [("A", "10.96.0.10")]


async def test_edns_opt_is_echoed_only_when_sent(server: DnsServer) -> None:
    with_edns = await query(server.port, "mysvc.default.svc.cluster.local", edns=4096)
    opts = [rr for rr in with_edns.ar if rr.rtype == QTYPE.OPT]
    assert len(opts) == 1 and opts[0].rclass == 1232  # our advertised size

    without = await query(server.port, "mysvc.default.svc.cluster.local")
    assert [rr for rr in without.ar if rr.rtype == QTYPE.OPT] == []


# A client's EDNS size -> the most a UDP answer may take: 512 without EDNS, never more than the
# 1232 we advertise, and a size between the two rounds down to 512 (one cache variant each).
UDP_LIMITS = [(None, 512), (100, 512), (512, 512), (800, 512), (1232, 1232), (1500, 1232), (4096, 1232),
              (65535, 1232)]


@pytest.mark.parametrize("name,qtype", [("many.big.svc.cluster.local", "A"),
                                        ("many.big.svc.cluster.local", "SRV"),
                                        ("_http._tcp.many.big.svc.cluster.local", "SRV")],
                         ids=["a", "srv", "named-srv"])
async def test_udp_answers_never_exceed_min_of_advertised_and_client_size(
        server: DnsServer, name: str, qtype: str) -> None:
    """Largest client first, so a cached answer built for it would show in the smaller ones."""
    full = await query(server.port, name, qtype, tcp=True)
    assert full.header.tc == 0 and len(full.rr) == 100
    for round_no in range(2):  # the second round comes from the cache
        for edns, limit in sorted(UDP_LIMITS, key=lambda e: -(e[0] or 0)):
            q = DNSRecord.question(name, qtype)
            if edns is not None:
                q.add_ar(EDNS0(udp_len=edns))
            raw = await ask(server.port, q)
            assert raw is not None and len(raw) <= limit, (edns, round_no, len(raw or b""))
            reply = DNSRecord.parse(raw)
            # cut as CoreDNS cuts: as many whole records as fit, and TC
            assert reply.header.tc == 1 and 0 < len(reply.rr) < 100, (edns, len(reply.rr))
            assert [str(rr.rdata) for rr in reply.rr] == [str(rr.rdata) for rr in full.rr[:len(reply.rr)]]
            assert [rr.rtype for rr in reply.ar] == ([QTYPE.OPT] if edns is not None else [])
            reply.rr.append(full.rr[len(reply.rr)])
            assert len(reply.pack()) > limit  # the next record would not have fit
    assert server.stats.cache_hits >= len(UDP_LIMITS)


async def test_big_answer_truncates_over_udp_and_fits_over_tcp(server: DnsServer) -> None:
    name = "many.big.svc.cluster.local"
    for _ in range(2):
        over_udp = await query(server.port, name, edns=65535)
        assert over_udp.header.tc == 1 and len(over_udp.rr) < 100
        over_tcp = await query(server.port, name, tcp=True)
        assert over_tcp.header.tc == 0 and len(over_tcp.rr) == 100
        assert {str(rr.rdata) for rr in over_tcp.rr} == {
            f"10.2.{i // 200}.{i % 200 + 1}" for i in range(100)
        }


async def test_zone_and_ttl_are_settings(index: RecordIndex) -> None:
    dns = DnsServer(index, zone="k8s.test.", ttl=30)
    await dns.start(LOOPBACK, 0)
    try:
        reply = await query(dns.port, "mysvc.default.svc.k8s.test")
        assert answers(reply) == [("A", "10.96.0.10")]
        assert reply.rr[0].ttl == 30
        reply = await query(dns.port, "_http._tcp.mysvc.default.svc.k8s.test", "SRV")
        assert answers(reply) == [("SRV", "0 100 80 mysvc.default.svc.k8s.test.")]
        reply = await query(dns.port, "nope.default.svc.k8s.test")
        assert [(str(rr.rname), rr.ttl) for rr in reply.auth] == [("k8s.test.", 30)]
        reply = await query(dns.port, "mysvc.default.svc.cluster.local")
        assert RCODE.get(reply.header.rcode) == "REFUSED"
    finally:
        await dns.stop()


def _header(ident: int, flags: int, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!6H", ident, flags, qd, an, ns, ar)


QUESTION = DNSRecord.question("mysvc.default.svc.cluster.local").pack()[12:]

ERROR_CASES = [
    ("garbage-question", _header(0x1234, 0x0100) + b"\x05abc", "FORMERR"),
    ("two-questions", _header(0x1234, 0x0100, qd=2) + QUESTION + QUESTION, "FORMERR"),
    ("no-question", _header(0x1234, 0x0100, qd=0), "FORMERR"),
    ("compressed-question", _header(0x1234, 0x0100) + b"\xc0\x0c\x00\x01\x00\x01", "FORMERR"),
    ("label-too-long", _header(0x1234, 0x0100) + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01",
     "FORMERR"),
    ("name-too-long", _header(0x1234, 0x0100) + b"\x3f" + b"a" * 63 + (b"\x3f" + b"b" * 63) * 3
     + b"\x00\x00\x01\x00\x01", "FORMERR"),
    ("missing-additional", _header(0x1234, 0x0100, ar=1) + QUESTION, "FORMERR"),
    ("status-opcode", _header(0x1234, 0x1100) + QUESTION, "NOTIMP"),
    ("chaos-class", _header(0x1234, 0x0100) + QUESTION[:-2] + b"\x00\x03", "REFUSED"),
]


@pytest.mark.parametrize(
    "packet,rcode", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_error_rcodes(server: DnsServer, packet: bytes, rcode: str, tcp: bool) -> None:
    raw = await ask(server.port, packet, tcp=tcp)
    assert raw is not None
    ident, flags = struct.unpack_from("!HH", raw)
    assert ident == 0x1234
    assert flags & 0x8000  # a response
    assert RCODE.get(flags & 0xF) == rcode
    # and the server still answers properly afterwards
    reply = await query(server.port, "mysvc.default.svc.cluster.local")
    assert answers(reply) == [("A", "10.96.0.10")]


@pytest.mark.parametrize(
    "packet",
    [b"", b"\x12", b"\x12\x34\x01\x00\x00", _header(0x1234, 0x8180) + QUESTION],
    ids=["empty", "one-byte", "short-header", "a-response"],
)
async def test_unanswerable_packets_are_dropped(server: DnsServer, packet: bytes) -> None:
    assert await ask(server.port, packet, timeout=0.3) is None
    reply = await query(server.port, "mysvc.default.svc.cluster.local")
    assert answers(reply) == [("A", "10.96.0.10")]


async def test_unknown_edns_version_gets_badvers(server: DnsServer) -> None:
    q = DNSRecord.question("mysvc.default.svc.cluster.local")
    q.add_ar(EDNS0(udp_len=1232, version=1))
    reply = DNSRecord.parse(await ask(server.port, q))
    opt = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT][0]
    extended = (opt.ttl >> 24) << 4 | reply.header.rcode
    assert extended == 16  # BADVERS
    assert (opt.ttl >> 16) & 0xFF == 0  # we speak version 0
    assert reply.rr == []


async def test_edns_options_and_extra_records_are_tolerated(server: DnsServer) -> None:
    # dig sends a COOKIE option by default; options do not change the answer.
    from dnslib import EDNSOption

    for cookie in (b"\x01" * 8, b"\x02" * 8):
        q = DNSRecord.question("mysvc.default.svc.cluster.local")
        q.add_ar(EDNS0(udp_len=1232, opts=[EDNSOption(10, cookie)]))
        reply = DNSRecord.parse(await ask(server.port, q))
        assert answers(reply) == [("A", "10.96.0.10")]
    assert server.stats.cache_hits == 1  # options do not keep a query from the cache


async def test_cache_is_invalidated_on_changes(server: DnsServer, index: RecordIndex) -> None:
    name = "mysvc.default.svc.cluster.local"
    assert answers(await query(server.port, name)) == [("A", "10.96.0.10")]
    hits = server.stats.cache_hits
    assert answers(await query(server.port, name)) == [("A", "10.96.0.10")]
    assert server.stats.cache_hits == hits + 1

    index.upsert_service(service("default", "mysvc", "10.96.0.99", ("http", 80, "TCP")))
    assert answers(await query(server.port, name)) == [("A", "10.96.0.99")]
    assert answers(await query(server.port, "99.0.96.10.in-addr.arpa", "PTR")) == [
        ("PTR", "mysvc.default.svc.cluster.local.")
    ]
    reply = await query(server.port, "10.0.96.10.in-addr.arpa", "PTR")
    assert RCODE.get(reply.header.rcode) == "REFUSED"  # the old ClusterIP is gone

    index.delete_service("default", "mysvc")
    reply = await query(server.port, name)
    assert RCODE.get(reply.header.rcode) == "NXDOMAIN"


async def test_endpoint_changes_reach_headless_answers(
    server: DnsServer, index: RecordIndex
) -> None:
    from .conftest import endpoint_slice

    name = "headless.default.svc.cluster.local"
    assert len((await query(server.port, name)).rr) == 3
    index.upsert_endpointslice(
        endpoint_slice(
            "default", "headless-abc", "headless",
            [("10.1.0.1", "web-0", False), ("10.1.0.4", "web-3", True)],
            ("http", 8080, "TCP"),
        )
    )
    assert answers(await query(server.port, name)) == [("A", "10.1.0.4")]
    assert answers(await query(server.port, "web-3.headless.default.svc.cluster.local")) == [
        ("A", "10.1.0.4")
    ]
    index.delete_endpointslice("default", "headless-abc")
    reply = await query(server.port, name)
    assert (RCODE.get(reply.header.rcode), reply.rr) == ("NOERROR", [])


async def test_tcp_connection_carries_several_queries(server: DnsServer) -> None:
    import asyncio

    reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
    try:
        names = ["mysvc.default.svc.cluster.local", "api.prod.svc.cluster.local"]
        for i, name in enumerate(names):
            q = DNSRecord.question(name)
            q.header.id = 100 + i
            packet = q.pack()
            writer.write(struct.pack("!H", len(packet)) + packet)
        await writer.drain()
        replies = []
        for _ in range(2):
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            replies.append(DNSRecord.parse(await reader.readexactly(length)))
    finally:
        writer.close()
    assert [(r.header.id, answers(r)) for r in replies] == [
        (100, [("A", "10.96.0.10")]),
        (101, [("A", "10.96.1.1")]),
    ]
