"""Forwarding names outside the zone to a real dnsmasq on loopback."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from dnslib import EDNS0, RCODE, DNSRecord

from cluster.procs import free_port, stop_process
from services.dns import DnsServer, RecordIndex, parse_upstream

from .conftest import LOOPBACK, answers, ask, exchange_udp, query

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
pytestmark = pytest.mark.skipif(not Path(DNSMASQ).exists(), reason="dnsmasq not installed")

HOSTS = """\
192.0.2.7 outside.example
192.0.2.8 nope.default.svc.cluster.local
""" + "".join(f"198.51.100.{i} big.example\n" for i in range(1, 201))


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[int]:
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    port = free_port(LOOPBACK, udp_too=True)
    proc = subprocess.Popen(
        [
            DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", f"--port={port}",
            f"--listen-address={LOOPBACK}", "--bind-interfaces", "--no-resolv", "--no-hosts",
            f"--addn-hosts={hosts}", "--pid-file=", "--user=root", "--edns-packet-max=4096",
            f"--log-facility={tmp_path / 'dnsmasq.log'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        probe = DNSRecord.question("outside.example").pack()
        deadline = time.monotonic() + 10
        while exchange_udp(port, probe, timeout=0.2) is None:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "dnsmasq did not come up"
        yield port
    finally:
        stop_process(proc, timeout=5)


@pytest.fixture
async def forwarding_server(index: RecordIndex, dnsmasq: int) -> AsyncIterator[DnsServer]:
    dns = DnsServer(index, upstreams=[parse_upstream(f"{LOOPBACK}:{dnsmasq}")])
    await dns.start(LOOPBACK, 0)
    try:
        yield dns
    finally:
        await dns.stop()


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_outside_names_are_forwarded(forwarding_server: DnsServer, tcp: bool) -> None:
    reply = await query(forwarding_server.port, "Outside.Example", tcp=tcp)
    assert RCODE.get(reply.header.rcode) == "NOERROR"
    assert answers(reply) == [("A", "192.0.2.7")]
    assert reply.header.ra == 1
    assert forwarding_server.stats.forwarded == 1


@pytest.mark.parametrize("edns,limit", [(None, 512), (1232, 1232), (4096, 1232), (65535, 1232)],
                         ids=["no-edns", "1232", "4096", "65535"])
async def test_forwarded_udp_replies_are_cut_to_the_clients_limit(
        forwarding_server: DnsServer, edns: int | None, limit: int) -> None:
    """The upstream answers the client's own size (dnsmasq: up to 4096); the reply it gets back
    through us is held to what we advertise, as our own answers are."""
    q = DNSRecord.question("big.example")
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns))
    raw = await ask(forwarding_server.port, q)
    assert raw is not None and len(raw) <= limit
    reply = DNSRecord.parse(raw)
    assert reply.header.tc == 1 and 0 < len(reply.rr) < 200
    full = await query(forwarding_server.port, "big.example", tcp=True)
    assert full.header.tc == 0 and len(full.rr) == 200


async def test_unknown_reverse_is_forwarded(forwarding_server: DnsServer) -> None:
    reply = await query(forwarding_server.port, "7.2.0.192.in-addr.arpa", "PTR")
    assert answers(reply) == [("PTR", "outside.example.")]
    # ... while cluster addresses are answered locally
    reply = await query(forwarding_server.port, "10.0.96.10.in-addr.arpa", "PTR")
    assert answers(reply) == [("PTR", "mysvc.default.svc.cluster.local.")]


async def test_zone_names_are_never_forwarded(forwarding_server: DnsServer) -> None:
    reply = await query(forwarding_server.port, "nope.default.svc.cluster.local")
    assert RCODE.get(reply.header.rcode) == "NXDOMAIN"
    assert forwarding_server.stats.forwarded == 0


async def test_dead_upstreams_are_skipped(index: RecordIndex, dnsmasq: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blackhole:
        blackhole.bind((LOOPBACK, 0))  # receives, never answers: a timeout
        silent = blackhole.getsockname()[1]
        upstreams = [(LOOPBACK, silent), (LOOPBACK, dnsmasq)]
        dns = DnsServer(index, upstreams=upstreams, forward_timeout=0.3)
        await dns.start(LOOPBACK, 0)
        try:
            started = time.monotonic()
            reply = await query(dns.port, "outside.example")
            assert answers(reply) == [("A", "192.0.2.7")]
            assert 0.25 < time.monotonic() - started < 1.5
        finally:
            await dns.stop()


async def test_servfail_when_no_upstream_answers(index: RecordIndex) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blackhole:
        blackhole.bind((LOOPBACK, 0))
        dns = DnsServer(
            index, upstreams=[(LOOPBACK, blackhole.getsockname()[1])], forward_timeout=0.2
        )
        await dns.start(LOOPBACK, 0)
        try:
            reply = await query(dns.port, "outside.example")
            assert RCODE.get(reply.header.rcode) == "SERVFAIL"
            assert str(reply.q.qname) == "outside.example."
            assert dns.stats.forward_failures == 1
            # the server is not blocked by the pending forward
            reply = await query(dns.port, "mysvc.default.svc.cluster.local")
            assert answers(reply) == [("A", "10.96.0.10")]
        finally:
            await dns.stop()


async def test_forwards_run_concurrently(index: RecordIndex, dnsmasq: int) -> None:
    dns = DnsServer(index, upstreams=[(LOOPBACK, dnsmasq)])
    await dns.start(LOOPBACK, 0)
    try:
        replies = await asyncio.gather(*(query(dns.port, "outside.example") for _ in range(20)))
        assert all(answers(r) == [("A", "192.0.2.7")] for r in replies)
    finally:
        await dns.stop()


@pytest.mark.parametrize(
    "text,expected",
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_parse_upstream(text: str, expected: tuple[str, int]) -> None:
    assert parse_upstream(text) == expected


@pytest.mark.parametrize("text", ["dns.google", "127.0.0.1:0", "127.0.0.1:99999", "[::1]:x"])
def test_parse_upstream_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_upstream(text)
