"""Shared fixtures: a small cluster's Services/EndpointSlices, a real server on loopback.

The server runs on the test's event loop, so blocking clients (dnslib's send, dig) run in a
thread via ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dnslib import QTYPE, RR, DNSRecord

from services.dns import DnsServer, RecordIndex

LOOPBACK = "127.0.0.1"


def service(
    namespace: str, name: str, cluster_ip: str, *ports: tuple[str, int, str], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {
            "clusterIP": cluster_ip,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
            **spec,
        },
    }


def endpoint_slice(
    namespace: str,
    name: str,
    service_name: str,
    endpoints: list[tuple[str, str | None, bool]],
    *ports: tuple[str, int, str],
    address_type: str = "IPv4",
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": namespace,
            "name": name,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": address_type,
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": ready}, **({"hostname": h} if h else {})}
            for ip, h, ready in endpoints
        ],
        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
    }


def cluster_objects() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    services = [
        service("default", "mysvc", "10.96.0.10", ("http", 80, "TCP"), ("dns", 53, "UDP")),
        service("default", "headless", "None", ("http", 80, "TCP")),
        service("default", "pub", "None", ("http", 80, "TCP"), publishNotReadyAddresses=True),
        service(
            "default", "ext", "", type="ExternalName", externalName="example.org"
        ),
        service("kube-system", "kube-dns", "10.96.0.53", ("dns", 53, "UDP")),
        service(
            "prod", "api", "10.96.1.1", ("https", 443, "TCP"),
            clusterIPs=["10.96.1.1", "fd00::1:1"],
        ),
        service("big", "many", "None", ("http", 80, "TCP")),
    ]
    slices = [
        endpoint_slice(
            "default", "headless-abc", "headless",
            [("10.1.0.1", "web-0", True), ("10.1.0.2", "web-1", True),
             ("10.1.0.3", None, True), ("10.1.0.4", "web-3", False)],
            ("http", 8080, "TCP"),
        ),
        endpoint_slice(
            "default", "pub-abc", "pub", [("10.1.1.1", None, False)], ("http", 80, "TCP")
        ),
        endpoint_slice(
            "big", "many-abc", "many",
            [(f"10.2.{i // 200}.{i % 200 + 1}", None, True) for i in range(100)],
            ("http", 8080, "TCP"),
        ),
    ]
    return services, slices


def filled_index(*, synced: bool = True) -> RecordIndex:
    index = RecordIndex()
    services, slices = cluster_objects()
    for obj in services:
        index.upsert_service(obj)
    for obj in slices:
        index.upsert_endpointslice(obj)
    if synced:
        index.mark_synced()
    return index


@pytest.fixture
def index() -> RecordIndex:
    return filled_index()


@pytest.fixture
async def server(index: RecordIndex) -> AsyncIterator[DnsServer]:
    dns = DnsServer(index, zone="cluster.local", ttl=5)
    await dns.start(LOOPBACK, 0)
    try:
        yield dns
    finally:
        await dns.stop()


def exchange_udp(port: int, packet: bytes, *, timeout: float = 2.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (LOOPBACK, port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def exchange_tcp(port: int, packet: bytes, *, timeout: float = 2.0) -> bytes:
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(struct.pack("!H", len(packet)) + packet)
        length = struct.unpack("!H", _recv_exact(sock, 2))[0]
        return _recv_exact(sock, length)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed early")
        data += chunk
    return data


async def ask(
    port: int, packet: bytes | DNSRecord, *, tcp: bool = False, timeout: float = 2.0
) -> bytes | None:
    wire = packet.pack() if isinstance(packet, DNSRecord) else packet
    if tcp:
        return await asyncio.to_thread(exchange_tcp, port, bytes(wire), timeout=timeout)
    return await asyncio.to_thread(exchange_udp, port, bytes(wire), timeout=timeout)


async def query(
    port: int, name: str, qtype: str = "A", *, tcp: bool = False, edns: int | None = None
) -> DNSRecord:
    question = DNSRecord.question(name, qtype)
    if edns is not None:
        from dnslib import EDNS0

        question.add_ar(EDNS0(udp_len=edns))
    reply = await ask(port, question, tcp=tcp)
    assert reply is not None, f"no reply for {name} {qtype}"
    return DNSRecord.parse(reply)


def rdata_text(rr: RR) -> str:
    text = str(rr.rdata)
    if rr.rtype == QTYPE.SOA:
        mname, rname, _serial, *times = text.split()
        return " ".join([mname, rname, *times])  # the serial follows the data; leave it out
    return text


def answers(reply: DNSRecord) -> list[tuple[str, str]]:
    return sorted((QTYPE.get(rr.rtype), rdata_text(rr)) for rr in reply.rr)
