"""The response cache: entries die exactly when what they were built from changes."""

from __future__ import annotations

import random
from typing import Any

from dnslib import EDNS0, DNSRecord

from services.dns import DnsServer, RecordIndex
from services.dns.handler import QueryHandler

from .conftest import answers, endpoint_slice, filled_index, query, service

NAME = "mysvc.default.svc.cluster.local"


async def test_unrelated_changes_keep_the_entry(server: DnsServer, index: RecordIndex) -> None:
    assert answers(await query(server.port, NAME)) == [("A", "10.96.0.10")]
    index.upsert_service(service("other", "x", "10.96.9.9"))
    index.upsert_endpointslice(
        endpoint_slice("default", "headless-abc", "headless", [("10.1.0.9", None, True)])
    )
    hits = server.stats.cache_hits
    assert answers(await query(server.port, NAME)) == [("A", "10.96.0.10")]
    assert server.stats.cache_hits == hits + 1


async def test_new_namespace_and_service_replace_cached_nxdomain(
    server: DnsServer, index: RecordIndex
) -> None:
    for name in ("fresh.svc.cluster.local", "web.fresh.svc.cluster.local"):
        reply = await query(server.port, name)
        assert reply.header.rcode == 3  # NXDOMAIN, now cached
    index.upsert_service(service("fresh", "web", "10.96.7.7"))
    reply = await query(server.port, "fresh.svc.cluster.local")
    assert (reply.header.rcode, reply.rr) == (0, [])  # the namespace exists now
    assert answers(await query(server.port, "web.fresh.svc.cluster.local")) == [
        ("A", "10.96.7.7")
    ]
    index.delete_service("fresh", "web")
    assert (await query(server.port, "fresh.svc.cluster.local")).header.rcode == 3


async def test_reverse_answers_follow_addresses(server: DnsServer, index: RecordIndex) -> None:
    reverse = "7.7.96.10.in-addr.arpa"
    assert (await query(server.port, reverse, "PTR")).header.rcode == 5  # REFUSED: not ours
    index.upsert_service(service("default", "late", "10.96.7.7"))
    assert answers(await query(server.port, reverse, "PTR")) == [
        ("PTR", "late.default.svc.cluster.local.")
    ]


async def test_nameserver_glue_follows_kube_dns(server: DnsServer, index: RecordIndex) -> None:
    assert answers(await query(server.port, "ns.dns.cluster.local")) == [("A", "10.96.0.53")]
    index.upsert_service(service("kube-system", "kube-dns", "10.96.0.54", ("dns", 53, "UDP")))
    assert answers(await query(server.port, "ns.dns.cluster.local")) == [("A", "10.96.0.54")]
    reply = await query(server.port, "cluster.local", "NS")
    assert [str(rr.rdata) for rr in reply.ar] == ["10.96.0.54"]


def _random_change(rng: random.Random, index: RecordIndex) -> None:
    namespace = rng.choice(["default", "prod", "fresh"])
    name = rng.choice(["mysvc", "headless", "api", "web", "kube-dns"])
    if name == "kube-dns" and rng.random() < 0.5:
        namespace = "kube-system"
    action = rng.randrange(4)
    ip = f"10.96.{rng.randrange(3)}.{rng.randrange(1, 4)}"
    if action == 0:
        kwargs: dict[str, Any] = {}
        cluster_ip = "None" if rng.random() < 0.3 else ip
        index.upsert_service(service(namespace, name, cluster_ip, ("http", 80, "TCP"), **kwargs))
    elif action == 1:
        index.delete_service(namespace, name)
    elif action == 2:
        eps = [
            (f"10.1.{rng.randrange(2)}.{rng.randrange(1, 4)}", rng.choice([None, "web-0"]),
             rng.random() < 0.8)
            for _ in range(rng.randrange(4))
        ]
        slice_name = f"{name}-{rng.randrange(2)}"
        index.upsert_endpointslice(
            endpoint_slice(namespace, slice_name, name, eps, ("http", 8080, "TCP"))
        )
    else:
        index.delete_endpointslice(namespace, f"{name}-{rng.randrange(2)}")


def _questions() -> list[bytes]:
    names = [
        "cluster.local", "ns.dns.cluster.local", "default.svc.cluster.local",
        "fresh.svc.cluster.local", "_tcp.headless.default.svc.cluster.local",
    ]
    for ns in ("default", "prod", "fresh"):
        for svc in ("mysvc", "headless", "api", "web"):
            base = f"{svc}.{ns}.svc.cluster.local"
            names += [base, f"web-0.{base}", f"10-1-0-1.{base}", f"_http._tcp.{base}"]
    names += [f"{d}.{c}.96.10.in-addr.arpa" for c in range(3) for d in range(1, 4)]
    names += [f"{d}.{c}.1.10.in-addr.arpa" for c in range(2) for d in range(1, 4)]
    out = []
    for name in names:
        for qtype in ("A", "SRV", "PTR", "NS"):
            out.append(bytes(DNSRecord.question(name, qtype).pack()))
    return out


def test_cached_answers_equal_fresh_answers_across_random_changes() -> None:
    """Whatever changes, an answer from the cache is the answer the index gives right now."""
    rng = random.Random(5)
    index = filled_index()
    cached = QueryHandler(index, soa_serial=1)
    uncached = QueryHandler(index, soa_serial=1, cache_size=0)
    questions = _questions()
    for _ in range(300):
        for _ in range(rng.randrange(3)):
            _random_change(rng, index)
        for packet in rng.sample(questions, 40):
            assert cached.answer(packet) == uncached.answer(packet), DNSRecord.parse(packet)
    assert cached.stats.cache_hits > 3000  # mostly served from the cache, and still right


def test_a_cached_answer_never_exceeds_the_size_of_the_client_it_is_served_to() -> None:
    """Clients that differ in EDNS size share an entry only if the answer fits them all: an
    answer built for a 65535-byte client must not reach a 4096-byte one (or anyone over UDP)."""
    index = filled_index()
    index.upsert_service(service("big", "huge", "None", ("http", 80, "TCP")))
    index.upsert_endpointslice(endpoint_slice(
        "big", "huge-abc", "huge", [(f"10.3.{i // 200}.{i % 200 + 1}", None, True) for i in range(400)],
        ("http", 8080, "TCP")))
    handler = QueryHandler(index)
    sizes = [65535, 4096, 2048, 1232, 1000, 512, None]
    for _ in range(2):
        for size in sizes:
            q = DNSRecord.question("huge.big.svc.cluster.local")
            if size is not None:
                q.add_ar(EDNS0(udp_len=size))
            reply = handler.answer(q.pack(), False)
            assert isinstance(reply, bytes)
            assert len(reply) <= (1232 if size is not None and size >= 1232 else 512), size
            assert DNSRecord.parse(reply).header.tc == 1
    assert handler.stats.cache_hits >= len(sizes)
