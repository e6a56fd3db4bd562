"""DNS over TCP under pressure, on a real server on loopback: idle connections cannot lock
other clients out, slow clients are cut off, and closed connections leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import struct
import time

import pytest
from dnslib import DNSRecord
from prometheus_client import generate_latest

from services.dns import DnsServer, RecordIndex, dns_registry, tcp

from .conftest import LOOPBACK, answers

NAME = "mysvc.default.svc.cluster.local"


async def connect(port: int, source: str = LOOPBACK) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(LOOPBACK, port, local_addr=(source, 0))


async def ask_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ident: int = 1) -> DNSRecord:
    q = DNSRecord.question(NAME)
    q.header.id = ident
    packet = q.pack()
    writer.write(struct.pack("!H", len(packet)) + packet)
    await writer.drain()
    (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 2))
    return DNSRecord.parse(await asyncio.wait_for(reader.readexactly(length), 2))


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except (TimeoutError, ConnectionError):
        return False


async def settle(check, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_idle_connections_of_one_client_cannot_lock_tcp_out(server: DnsServer, index: RecordIndex) -> None:
    idle = [await connect(server.port) for _ in range(300)]
    await settle(lambda: server.tcp.evicted >= 300 - tcp.MAX_PER_CLIENT)
    assert len(server.tcp) == server.tcp.of_client(LOOPBACK) == tcp.MAX_PER_CLIENT
    # the same client's newest connection and another client are both served at once
    assert answers(await ask_on(*await connect(server.port))) == [("A", "10.96.0.10")]
    assert answers(await ask_on(*await connect(server.port, "127.0.0.2"))) == [("A", "10.96.0.10")]
    assert await closed_by_server(idle[0][0], 1)  # the oldest idle ones made room
    metrics = generate_latest(dns_registry(server.stats, server.handler.cache, index, server.tcp)).decode()
    assert f"minicluster_dns_tcp_evicted_total {float(server.tcp.evicted)}" in metrics
    assert "minicluster_dns_tcp_connections " in metrics
    for _, writer in idle:
        writer.close()


async def test_at_the_total_cap_the_longest_idle_connection_makes_room(index: RecordIndex) -> None:
    dns = DnsServer(index, max_tcp_connections=8, max_tcp_per_client=4)
    await dns.start(LOOPBACK, 0)
    try:
        idle = [await connect(dns.port, f"127.0.0.{1 + i // 4}") for i in range(8)]
        await settle(lambda: len(dns.tcp) == 8)
        busy = await connect(dns.port, "127.0.0.9")
        assert answers(await ask_on(*busy)) == [("A", "10.96.0.10")]
        assert await closed_by_server(idle[0][0], 1)
        assert len(dns.tcp) == 8 and dns.tcp.evicted == 1
        # a connection that keeps asking stays; it is never the one closed
        for i in range(3):
            await connect(dns.port, "127.0.0.10")
            assert answers(await ask_on(*busy, ident=10 + i)) == [("A", "10.96.0.10")]
        for _, writer in idle:
            writer.close()
    finally:
        await dns.stop()


async def test_slow_clients_are_cut_off(server: DnsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "READ_TIMEOUT", 0.3)
    monkeypatch.setattr(tcp, "IDLE_TIMEOUT", 0.5)
    silent, _ = await connect(server.port)
    started = time.monotonic()
    assert await closed_by_server(silent, 2)  # no first query within the read timeout
    assert 0.25 < time.monotonic() - started < 1.5

    # a byte at a time, each within the timeout: the whole message is what must arrive in time
    reader, writer = await connect(server.port)
    packet = struct.pack("!H", 40) + DNSRecord.question(NAME).pack()
    started = time.monotonic()
    cut = False
    for byte in packet[:20]:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            cut = True
            break
        await asyncio.sleep(0.1)
    assert cut or await closed_by_server(reader, 2)
    assert time.monotonic() - started < 1.5

    reader, writer = await connect(server.port)  # after an answer, the idle timeout applies
    assert answers(await ask_on(reader, writer)) == [("A", "10.96.0.10")]
    started = time.monotonic()
    assert await closed_by_server(reader, 2)
    assert 0.45 < time.monotonic() - started < 1.5


async def test_closed_connections_leave_nothing_behind(server: DnsServer) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    for _ in range(3):
        conns = [await connect(server.port, f"127.0.0.{1 + i % 8}") for i in range(60)]
        for i, (reader, writer) in enumerate(conns[:20]):
            assert answers(await ask_on(reader, writer, ident=i)) == [("A", "10.96.0.10")]
        for _, writer in conns:
            writer.close()
        await settle(lambda: len(server.tcp) == 0)
    await settle(lambda: open_fds() <= before)
    assert server.tcp.of_client(LOOPBACK) == 0 and not server._tasks
