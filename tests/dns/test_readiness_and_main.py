"""The HTTP side (/healthz, /readyz, /metrics) and the command line entry point."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from dnslib import RCODE, DNSRecord

from kubecore.controller.health import Health, create_health_app
from services.dns import DnsServer, RecordIndex, dns_registry, records_synced
from services.dns.__main__ import parse_args

from .conftest import LOOPBACK, exchange_udp, filled_index, query
from .test_forward import free_port

REPO = Path(__file__).resolve().parents[2]


async def test_readyz_follows_sync_and_metrics_count_queries() -> None:
    index = filled_index(synced=False)
    dns = DnsServer(index)
    await dns.start(LOOPBACK, 0)
    registry = dns_registry(dns.stats, dns.handler.cache, index)
    app = create_health_app(Health(registry=registry, ready=records_synced(index)))
    async with TestClient(TestServer(app, host=LOOPBACK)) as client:
        try:
            assert (await client.get("/healthz")).status == 200
            assert (await client.get("/readyz")).status == 503
            await query(dns.port, "mysvc.default.svc.cluster.local")  # SERVFAIL
            index.mark_synced()
            assert (await client.get("/readyz")).status == 200
            for _ in range(3):
                await query(dns.port, "mysvc.default.svc.cluster.local")
            await query(dns.port, "nope.default.svc.cluster.local", "AAAA")

            response = await client.get("/metrics")
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
        finally:
            await dns.stop()
    lines = set(text.splitlines())
    assert 'minicluster_dns_queries_total{rcode="SERVFAIL",type="A"} 1.0' in lines
    assert 'minicluster_dns_queries_total{rcode="NOERROR",type="A"} 3.0' in lines
    assert 'minicluster_dns_queries_total{rcode="NXDOMAIN",type="AAAA"} 1.0' in lines
    assert "minicluster_dns_cache_hits_total 2.0" in lines
    assert "minicluster_dns_cache_misses_total 3.0" in lines
    assert "minicluster_dns_synced 1.0" in lines
    assert "minicluster_dns_internal_errors_total 0.0" in lines


def test_random_query_types_do_not_explode_label_cardinality() -> None:
    from prometheus_client import generate_latest

    from services.dns.handler import QueryHandler

    index = filled_index()
    handler = QueryHandler(index)
    for qtype in range(1000, 1100):
        handler.answer(DNSRecord.question("mysvc.default.svc.cluster.local", "A").pack()[:-4]
                       + qtype.to_bytes(2, "big") + b"\x00\x01")
    text = generate_latest(dns_registry(handler.stats, handler.cache, index)).decode()
    assert 'minicluster_dns_queries_total{rcode="NOERROR",type="other"} 100.0' in text
    assert "TYPE1000" not in text


def test_parse_args() -> None:
    args = parse_args(
        ["--listen", "127.0.0.1", "--port", "1053", "--zone", "k8s.test", "--ttl", "30",
         "--upstream", "127.0.0.1:5353", "--upstream", "::1", "--metrics-port", "0",
         "--apiserver", "http://127.0.0.1:6443"]
    )
    assert (args.listen, args.port, args.zone, args.ttl) == ("127.0.0.1", 1053, "k8s.test", 30)
    assert args.upstream == [("127.0.0.1", 5353), ("::1", 53)]
    assert args.metrics_port == 0 and args.apiserver == "http://127.0.0.1:6443"
    defaults = parse_args([])
    assert (defaults.port, defaults.zone, defaults.ttl, defaults.upstream) == (
        53, "cluster.local", 5, []
    )


async def test_module_runs_as_a_process() -> None:
    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.dns", "--listen", LOOPBACK, "--port", str(port),
         "--metrics-port", str(metrics_port), "--apiserver", "http://127.0.0.1:1"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        probe = DNSRecord.question("mysvc.default.svc.cluster.local").pack()
        deadline = time.monotonic() + 15
        reply = None
        while reply is None:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not come up"
            reply = await asyncio.to_thread(exchange_udp, port, probe, timeout=0.2)
        # No informers yet: the zone stays unsynced, so SERVFAIL rather than NXDOMAIN.
        assert RCODE.get(DNSRecord.parse(reply).header.rcode) == "SERVFAIL"
        outside = await query(port, "example.com")
        assert RCODE.get(outside.header.rcode) == "REFUSED"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{LOOPBACK}:{metrics_port}/readyz") as response:
                assert response.status == 503
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert "watching services and endpointslices at http://127.0.0.1:1" in stderr
    assert "API server unavailable" in stderr  # the reflector keeps retrying


async def test_server_restarts_on_the_same_port() -> None:
    index = RecordIndex()
    index.mark_synced()
    first = DnsServer(index)
    await first.start(LOOPBACK, 0)
    port = first.port
    await first.stop()
    second = DnsServer(index)
    await second.start(LOOPBACK, port)
    try:
        reply = await query(port, "cluster.local", "SOA")
        assert len(reply.rr) == 1
    finally:
        await second.stop()
