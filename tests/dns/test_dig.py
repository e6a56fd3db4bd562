"""A few cases through the real ``dig`` client, including its UDP-truncated-then-TCP retry."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from services.dns import DnsServer

from .conftest import LOOPBACK

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig not installed")


async def dig(port: int, *args: str) -> str:
    command = ["dig", f"@{LOOPBACK}", "-p", str(port), "+time=2", "+tries=1", *args]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=20, check=False
    )
    return done.stdout


DIG_CASES = [
    ("udp", ["+short", "mysvc.default.svc.cluster.local"], ["10.96.0.10"]),
    ("tcp", ["+short", "+tcp", "mysvc.default.svc.cluster.local"], ["10.96.0.10"]),
    ("short-form", ["+short", "mysvc.default.svc"], ["10.96.0.10"]),
    ("reverse", ["+short", "-x", "10.96.0.10"], ["mysvc.default.svc.cluster.local."]),
    ("srv", ["+short", "SRV", "_http._tcp.mysvc.default.svc.cluster.local"],
     ["0 100 80 mysvc.default.svc.cluster.local."]),
    ("no-edns", ["+short", "+noedns", "web-1.headless.default.svc.cluster.local"], ["10.1.0.2"]),
]


@pytest.mark.parametrize(
    "args,expected", [c[1:] for c in DIG_CASES], ids=[c[0] for c in DIG_CASES]
)
async def test_dig_short(server: DnsServer, args: list[str], expected: list[str]) -> None:
    out = await dig(server.port, *args)
    assert out.split("\n")[:-1] == expected


async def test_dig_nxdomain_has_soa(server: DnsServer) -> None:
    out = await dig(server.port, "nope.default.svc.cluster.local")
    assert "status: NXDOMAIN" in out
    assert "flags: qr aa rd;" in out
    authority = out.split(";; AUTHORITY SECTION:\n")[1].split("\n")[0].split()
    assert authority[:4] == ["cluster.local.", "5", "IN", "SOA"]


async def test_dig_retries_truncated_answer_over_tcp(server: DnsServer) -> None:
    out = await dig(server.port, "+bufsize=1232", "many.big.svc.cluster.local")
    assert "Truncated, retrying in TCP mode." in out
    assert "ANSWER: 100," in out
    addresses = {
        line.split()[-1] for line in out.splitlines()
        if line.startswith("many.big.svc.cluster.local.")
    }
    assert addresses == {f"10.2.{i // 200}.{i % 200 + 1}" for i in range(100)}

    ignored = await dig(server.port, "+bufsize=1232", "+ignore", "many.big.svc.cluster.local")
    assert "flags: qr aa tc rd;" in ignored
    kept = int(ignored.split("ANSWER: ")[1].split(",")[0])
    assert 0 < kept < 100  # as many whole records as fit in 1232 bytes, as CoreDNS sends
    assert int(ignored.split("MSG SIZE  rcvd: ")[1].split()[0]) <= 1232
