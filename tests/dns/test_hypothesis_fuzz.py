"""Property-based fuzzing of a real DNS server on loopback, over UDP and TCP (hypothesis).

Queries are generated from their parts (names, types, flags, header counts, EDNS sizes) and as
raw or mutated bytes. Whatever arrives, the server must not fail, must not answer over UDP
with more than the client may take (512 without EDNS, never more than the 1232 advertised),
must echo the query id in well-formed replies, and must still answer a valid query afterwards.
The seed is fixed and the number of cases bounded, so a failure replays the same way.

The server runs on an event loop of its own in a thread, so the properties can use plain
blocking sockets (hypothesis drives synchronous tests).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from dnslib import EDNS0, QTYPE, DNSHeader, DNSQuestion, DNSRecord
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from services.dns import DnsServer

from .conftest import LOOPBACK, exchange_tcp, filled_index
from .test_fuzz import seed_packets, well_formed

FUZZ = settings(max_examples=300, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAMES = ["mysvc.default.svc.cluster.local", "many.big.svc.cluster.local", "_http._tcp.many.big.svc.cluster.local",
         "headless.default.svc.cluster.local", "10.0.96.10.in-addr.arpa", "cluster.local", "example.com"]
EDNS_SIZES = st.one_of(st.none(), st.sampled_from([0, 100, 511, 512, 513, 1231, 1232, 1233, 4096, 65535]),
                       st.integers(0, 65535))


class ThreadedServer:
    """A DnsServer on its own loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.dns = DnsServer(filled_index(), zone="cluster.local", ttl=5)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.dns.start(LOOPBACK, 0), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.dns.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def running() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


@st.composite
def built_queries(draw: st.DrawFn) -> bytes:
    """A query from its parts, lying at will in flags and counts."""
    name = draw(st.one_of(st.sampled_from(NAMES), st.lists(
        st.binary(min_size=1, max_size=63), min_size=1, max_size=6).map(lambda ls: b".".join(ls).decode("latin-1"))))
    try:
        q = DNSRecord(DNSHeader(id=0, rd=1), q=DNSQuestion(name))
        q.pack()
    except Exception:  # dnslib refuses some generated names; a plain one stands in
        q = DNSRecord(DNSHeader(id=0, rd=1), q=DNSQuestion(NAMES[0]))
    q.q.qtype = draw(st.one_of(st.sampled_from([QTYPE.A, QTYPE.SRV, QTYPE.PTR, QTYPE.ANY, QTYPE.AAAA]),
                               st.sampled_from([QTYPE.A, QTYPE.SRV]), st.integers(0, 65535)))
    q.q.qclass = draw(st.sampled_from([1, 1, 1, 1, 1, 3, 255, 254]))
    edns = draw(EDNS_SIZES)
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns, version=draw(st.sampled_from([0, 0, 1]))))
    data = bytearray(q.pack())
    data[0:2] = struct.pack("!H", draw(st.integers(0, 65535)))
    if draw(st.integers(0, 3)) == 0:
        data[2], data[3] = draw(st.integers(0, 255)), draw(st.integers(0, 255))
    if draw(st.integers(0, 4)) == 0:
        struct.pack_into("!4H", data, 4, *draw(st.tuples(*[st.sampled_from([0, 1, 2, 65535])] * 4)))
    return bytes(data)


SEEDS = seed_packets()  # once, outside the strategies: dnslib picks query ids at random


@st.composite
def mutated_queries(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for position, value in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)),
                                         max_size=6)):
        data[position] = value
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=40))


PACKETS = st.one_of(built_queries(), mutated_queries(), st.binary(max_size=700))


def udp_limit(packet: bytes) -> int:
    """The most a UDP reply to `packet` may take: 1232 only if it carries an OPT offering that."""
    try:
        offered = [rr.rclass for rr in DNSRecord.parse(packet).ar if rr.rtype == QTYPE.OPT]
    except Exception:
        return 512
    return 1232 if offered and offered[0] >= 1232 else 512


def exchange_udp_any(port: int, packet: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)  # many packets deserve no answer; do not wait long for them
        sock.sendto(packet, (LOOPBACK, port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def big_query(edns: int | None, qtype: str = "A") -> bytes:
    q = DNSRecord(DNSHeader(id=7, rd=1), q=DNSQuestion("many.big.svc.cluster.local", getattr(QTYPE, qtype)))
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns))
    return bytes(q.pack())


@seed(20240601)
@FUZZ
@given(packet=PACKETS)
@example(packet=big_query(65535))  # 25 kB answers went out for a 58-byte query
@example(packet=big_query(4096, "SRV"))
@example(packet=big_query(None, "SRV"))
def test_udp_replies_stay_within_the_clients_limit(running: ThreadedServer, packet: bytes) -> None:
    reply = exchange_udp_any(running.dns.port, packet)
    if reply is not None:
        assert len(reply) <= udp_limit(packet), (packet, len(reply))
        assert reply[:2] == packet[:2] and reply[2] & 0x80  # a response, echoing the query id
        assert well_formed(reply), reply
    assert running.dns.stats.internal_errors == 0


@seed(20240603)
@settings(FUZZ, max_examples=100)
@given(stream=st.lists(PACKETS, min_size=1, max_size=4), junk=st.binary(max_size=64))
def test_tcp_streams_of_messages_and_junk(running: ThreadedServer, stream: list[bytes], junk: bytes) -> None:
    """Length-prefixed messages back to back, then bytes that are no message at all; each
    reply well formed, echoing its query's id, in order."""
    with socket.create_connection((LOOPBACK, running.dns.port), timeout=0.5) as sock:
        sock.sendall(b"".join(struct.pack("!H", len(p)) + p for p in stream) + junk)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65535):
                received += chunk
        except (ConnectionError, TimeoutError):
            pass
    ids = {p[:2] for p in stream}
    while len(received) >= 2:
        (length,) = struct.unpack_from("!H", received)
        message, received = received[2:2 + length], received[2 + length:]
        assert len(message) == length and well_formed(message) and message[2] & 0x80
        assert message[:2] in ids
    assert running.dns.stats.internal_errors == 0


def test_still_answers_after_the_fuzzing(running: ThreadedServer) -> None:
    """Runs after the properties above (file order): the server kept serving through them."""
    for tcp in (False, True):
        q = DNSRecord.question("mysvc.default.svc.cluster.local")
        raw = exchange_tcp(running.dns.port, q.pack()) if tcp else exchange_udp_any(running.dns.port, q.pack())
        assert raw is not None
        assert [str(rr.rdata) for rr in DNSRecord.parse(raw).rr] == ["10.96.0.10"]
    assert running.dns.stats.internal_errors == 0
