"""Random and mutated packets: the server never raises, never stalls, and still answers right.

Bounded in count and time; seeded so a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time

import pytest
from dnslib import EDNS0, DNSRecord

from services.dns import DnsServer
from services.dns.handler import QueryHandler
from services.dns.records import RecordIndex

from .conftest import LOOPBACK, answers, filled_index, query

NAMES = [
    "mysvc.default.svc.cluster.local", "many.big.svc.cluster.local", "mysvc.default.svc",
    "_http._tcp.headless.default.svc.cluster.local", "10.0.96.10.in-addr.arpa",
    "10-2-3-4.default.pod.cluster.local", "cluster.local", "example.com", "x.cluster.local",
]
TYPES = ["A", "AAAA", "SRV", "PTR", "SOA", "NS", "ANY", "TXT"]


def seed_packets() -> list[bytes]:
    packets = []
    for name in NAMES:
        for qtype in TYPES:
            q = DNSRecord.question(name, qtype)
            packets.append(q.pack())
            q.add_ar(EDNS0(udp_len=1232))
            packets.append(q.pack())
    return packets


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    choice = rng.randrange(7)
    if choice == 0:
        return rng.randbytes(rng.randrange(0, 600))
    data = bytearray(rng.choice(seeds))
    if choice == 1:  # flip a few bytes
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 2:  # cut short
        del data[rng.randrange(len(data)):]
    elif choice == 3:  # append junk
        data += rng.randbytes(rng.randrange(1, 64))
    elif choice == 4:  # lie in the header counts
        struct.pack_into("!4H", data, 4, *(rng.choice([0, 1, 2, 255, 65535]) for _ in range(4)))
    elif choice == 5:  # break a label length or plant a compression pointer
        pos = rng.randrange(12, len(data))
        data[pos] = rng.choice([0x3F, 0x40, 0x7F, 0xC0, 0xC0 | 0x0C, 0xFF])
    else:  # random flags: opcodes, QR, Z bits
        data[2], data[3] = rng.randrange(256), rng.randrange(256)
    return bytes(data)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_handler_survives_fuzz(seed: int) -> None:
    rng = random.Random(seed)
    index = filled_index()
    handler = QueryHandler(index)
    seeds = seed_packets()
    deadline = time.monotonic() + 5
    count = 0
    while count < 8_000 and time.monotonic() < deadline:
        packet = mutate(rng, seeds)
        response = handler.answer(packet, tcp=rng.random() < 0.2)
        count += 1
        if response is None:
            continue
        assert isinstance(response, bytes), packet
        assert response[:2] == packet[:2], packet
        assert response[2] & 0x80, packet
        assert well_formed(response), (packet, response)
    assert handler.stats.internal_errors == 0
    assert count >= 1000
    # and it still answers correctly, from the cache and not
    for _ in range(2):
        good = handler.answer(DNSRecord.question("mysvc.default.svc.cluster.local").pack())
        assert isinstance(good, bytes)
        assert answers(DNSRecord.parse(good)) == [("A", "10.96.0.10")]


def test_cache_hits_match_misses_for_mutated_queries() -> None:
    """Whatever the fast path accepts, it answers exactly as the full path would."""
    rng = random.Random(7)
    seeds = seed_packets()
    cached = QueryHandler(filled_index(), soa_serial=1)
    uncached = QueryHandler(filled_index(), soa_serial=1, cache_size=0)
    hits = 0
    for _ in range(5000):
        packet = mutate(rng, seeds)
        first = cached.answer(packet)
        before = cached.stats.cache_hits
        second = cached.answer(packet)  # a hit whenever the first was cacheable
        hits += cached.stats.cache_hits - before
        fresh = uncached.answer(packet)
        assert first == second == fresh, packet
    assert hits > 500  # the comparison did exercise the fast path


def well_formed(message: bytes) -> bool:
    """Structural check that does not care what bytes labels hold (dnslib rejects some)."""
    try:
        counts = struct.unpack_from("!4H", message, 4)
        pos = 12
        for _ in range(counts[0]):
            pos = _skip_name(message, pos) + 4
        for _ in range(sum(counts[1:])):
            pos = _skip_name(message, pos)
            (rdlength,) = struct.unpack_from("!H", message, pos + 8)
            pos += 10 + rdlength
        return pos == len(message)
    except (IndexError, struct.error):
        return False


def _skip_name(message: bytes, pos: int) -> int:
    while True:
        length = message[pos]
        if length == 0:
            return pos + 1
        if length >= 0xC0:
            assert (length & 0x3F) << 8 | message[pos + 1] < pos  # points backwards
            return pos + 2
        assert length <= 63
        pos += length + 1


async def test_server_survives_fuzz_over_udp_and_tcp(server: DnsServer) -> None:
    rng = random.Random(11)
    seeds = seed_packets()
    packets = [mutate(rng, seeds) for _ in range(3000)]

    def blast() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i, packet in enumerate(packets):
                sock.sendto(packet, (LOOPBACK, server.port))
                if i % 200 == 0:
                    time.sleep(0.01)  # let the receive buffer drain; we test parsing, not load

    started = time.monotonic()
    await asyncio.to_thread(blast)

    # TCP: garbage streams, bad length prefixes, and a client that stalls mid-message.
    stalled = []
    for i in range(30):
        reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
        packet = packets[i]
        if i % 3 == 0:
            writer.write(rng.randbytes(rng.randrange(1, 200)))
        elif i % 3 == 1:
            writer.write(struct.pack("!H", len(packet)) + packet)
        else:
            writer.write(struct.pack("!H", 500) + packet[:10])  # promises more than it sends
            stalled.append(writer)
            continue
        await writer.drain()
        writer.close()

    reply = await query(server.port, "mysvc.default.svc.cluster.local")
    assert answers(reply) == [("A", "10.96.0.10")]
    reply = await query(server.port, "many.big.svc.cluster.local", tcp=True)
    assert len(reply.rr) == 100
    assert server.stats.internal_errors == 0
    assert time.monotonic() - started < 30
    for writer in stalled:
        writer.close()


def test_index_ignores_malformed_objects_gracefully() -> None:
    index = RecordIndex()
    index.upsert_service(
        {"metadata": {"name": "odd", "namespace": "default"},
         "spec": {"clusterIP": "not-an-ip", "ports": [{"port": "x"}, None, {"port": 70000}]}}
    )
    index.upsert_endpointslice(
        {"metadata": {"name": "odd-1", "namespace": "default",
                      "labels": {"kubernetes.io/service-name": "odd"}},
         "endpoints": [{"addresses": ["300.1.1.1", "10.0.0.1"]}, "junk", {"addresses": None}]}
    )
    index.upsert_service({"metadata": {"namespace": "default"}, "spec": {}})  # no name
    index.upsert_service({"metadata": "junk"})
    index.upsert_endpointslice({"metadata": {"namespace": "default"}})
    index.upsert_endpointslice({"metadata": {"name": "x"}, "endpoints": [{"addresses": 5}]})
    assert len(index) == 1
    record = index.service("default", "odd")
    assert record is not None and record.cluster_ips == () and record.ports == ()
    assert [ep.address for ep in index.endpoints("default", "odd")] == ["10.0.0.1"]
