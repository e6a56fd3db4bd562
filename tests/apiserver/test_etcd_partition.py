"""A network partition of a real 3-member etcd, each member in a network namespace of its own
on a bridge: one member is cut off from the other two (its peers' packets dropped in its
namespace) while writes go on. Writes go on through the API server on the majority; the API
server whose only member is the cut-off one answers 5xx (or times out) and never serves the
old value as current; once healed, that member catches up and its API server serves the
latest writes."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from cluster.etcd import EtcdProcess
from cluster.procs import wait_http_ok
from kubecore.api import resources as R
from kubecore.api.errors import ApiError
from kubecore.client.rest import ApiClient, ApiUnavailable
from tests.conftest import ApiServerProcess

pytestmark = [pytest.mark.etcd, pytest.mark.netns]

BRIDGE, PREFIX, NET = "mcpt-br0", "mcpt-e", "10.249.77"
MEMBERS = {f"{PREFIX}{k}": f"{NET}.1{k}" for k in (1, 2, 3)}


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def teardown() -> None:
    for ns in MEMBERS:
        sh("ip", "link", "del", f"{ns}h", check=False)
        sh("ip", "netns", "del", ns, check=False)
    sh("ip", "link", "del", BRIDGE, check=False)


@pytest.fixture
def three_members():
    teardown()
    routes = sh("ip", "-4", "route", "show", "table", "all").stdout
    if f"{NET}." in routes:
        pytest.skip(f"{NET}.0/24 is routed on this machine")
    data = Path(tempfile.mkdtemp(prefix="etcd-partition-"))
    members: list[EtcdProcess] = []
    try:
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{NET}.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for ns, address in MEMBERS.items():
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", f"{ns}h", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", f"{ns}h", "master", BRIDGE, "up")
            sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        initial = ",".join(f"{ns}=http://{a}:2380" for ns, a in MEMBERS.items())
        for ns, address in MEMBERS.items():
            members.append(EtcdProcess(data_dir=data / ns, host=address, client_port=2379, peer_port=2380,
                                       name=ns, initial_cluster=initial, netns=ns,
                                       log_path=data / f"{ns}.log"))
        for m in members:
            m.launch()
        for m in members:
            wait_http_ok(f"http://{m.endpoint}/health", timeout=60, proc=m._proc, log_path=m.log_path)
        yield members
    finally:
        for m in members:
            m.stop()
        teardown()
        shutil.rmtree(data, ignore_errors=True)


def cut(ns: str, others: list[str]) -> None:
    """Drop every packet between `ns` and the other members (in and out), as a dead link
    would; the machine's own address on the bridge still reaches it."""
    peers = ", ".join(others)
    rules = (f"table ip partition {{\n"
             f"  chain input {{ type filter hook input priority 0; ip saddr {{ {peers} }} drop; }}\n"
             f"  chain output {{ type filter hook output priority 0; ip daddr {{ {peers} }} drop; }}\n}}\n")
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True, check=True)


def heal(ns: str) -> None:
    sh("ip", "netns", "exec", ns, "nft", "delete", "table", "ip", "partition")


async def value(client: ApiClient, name: str) -> str:
    return (await client.get(R.CONFIGMAPS, name, "default"))["data"]["v"]


async def test_a_cut_off_member_serves_no_stale_writes_and_catches_up(three_members, tmp_path):
    m1, m2, m3 = three_members
    majority = ApiServerProcess([m1.endpoint, m2.endpoint], log_path=tmp_path / "majority.log").start()
    minority = ApiServerProcess([m3.endpoint], log_path=tmp_path / "minority.log").start()
    try:
        async with ApiClient(majority.config, timeout=20) as a, ApiClient(minority.config, timeout=20) as c:
            await a.create(R.CONFIGMAPS, {"metadata": {"name": "x"}, "data": {"v": "1"}}, "default")
            assert await value(c, "x") == "1"

            cut(m3.netns or "", [m1.host, m2.host])
            began = time.monotonic()
            refused = 0
            for i in range(2, 12):  # writes go on through the majority
                while True:
                    try:
                        await a.patch(R.CONFIGMAPS, "x", {"data": {"v": str(i)}}, "default")
                        break
                    except ApiError as exc:  # the cut-off member led: a write in flight is refused
                        assert exc.code == 503, exc
                        refused += 1
                        await asyncio.sleep(0.2)
            writes_for = time.monotonic() - began
            assert writes_for < 15, "the majority kept taking writes"
            assert await value(a, "x") == "11"

            # the minority's server: an error or no answer, never "1" (or any value) as current
            for _ in range(2):
                try:
                    got = await asyncio.wait_for(value(c, "x"), 15)
                except (ApiError, ApiUnavailable, TimeoutError) as exc:
                    assert not isinstance(exc, ApiError) or exc.code >= 500, exc
                else:
                    raise AssertionError(f"the cut-off member's API server served {got!r} during the partition")
            with pytest.raises((ApiError, ApiUnavailable, TimeoutError)):  # and takes no write
                await asyncio.wait_for(c.patch(R.CONFIGMAPS, "x", {"data": {"v": "minority"}}, "default"), 15)

            async with minority.session() as session, session.get("/readyz") as ready:
                assert ready.status != 200, "the cut-off member's API server says it is ready"

            heal(m3.netns or "")
            healed = time.monotonic()
            while True:
                try:
                    if await asyncio.wait_for(value(c, "x"), 5) == "11":
                        break
                except (ApiError, ApiUnavailable, TimeoutError):
                    pass
                assert time.monotonic() - healed < 30, "the healed member did not catch up"
                await asyncio.sleep(0.2)
            caught_up = time.monotonic() - healed
            assert await value(a, "x") == "11", "the minority's refused write never took effect"
            print(f"partition: 10 writes through the majority in {writes_for:.1f}s ({refused} refused while "
                  f"it elected a leader); the healed member served the latest value {caught_up:.1f}s after the heal")
    finally:
        minority.stop()
        majority.stop()
