"""The proxy's two modes side by side: sync cost and per-packet cost, in scratch namespaces.

Prints figures, asserts nothing.  Run as root:  python -m bench.proxy_modes

1. Full sync into an empty namespace at 1,000 / 5,000 / 10,000 / 20,000 Services x 3
   endpoints: iptables mode (index, render, iptables-save, one iptables-restore) and
   nftables mode (index, render, list, one nft -f). iptables above --iptables-max is not
   run (it passes the 30 s command limit there); the line says so.
2. With the rules in place at the largest size run: one endpoint replaced and synced, and
   a sync with nothing changed (median of --repeat).
3. Per-packet cost: new TCP connections per second from a client namespace through a
   ClusterIP to a backend namespace, routed by the node namespace holding the rules, at
   100 and 10,000 Services. The target is the Service iptables mode matches last (the
   worst case of its linear KUBE-SERVICES chain); nftables finds every one in one map.

Goals (issue): nftables full sync of 10,000 under 1 s and 20,000 under 2 s; one endpoint
change at 10,000 under 50 ms; connections/s flat in nftables mode.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

from bench.proxy_sync import _ip, make_cluster
from services.proxy.iptables import CommandError, IptablesApplier
from services.proxy.model import ServiceIndex
from services.proxy.nftables import NftSettings
from services.proxy.nftsync import NftablesApplier
from services.proxy.rules import NodeSettings, render
from tests.proxy.netns import NetnsLab

NODE = "bench-node"
SETTINGS = NodeSettings(node_name=NODE, cluster_cidr="10.244.0.0/16")
NFT_SETTINGS = NftSettings(node_name=NODE, cluster_cidr="10.244.0.0/16", service_cidrs=("10.96.0.0/12",))
MODES = ["iptables", "nftables"]


@contextlib.contextmanager
def scratch() -> Iterator[NetnsLab]:
    """Scratch namespaces (tests/proxy/netns.py's lab), deleted on the way out."""
    lab = NetnsLab()
    try:
        yield lab
    finally:
        lab.close()


def index_of(services: list[dict[str, Any]], slices: list[dict[str, Any]]) -> ServiceIndex:
    index = ServiceIndex(NODE)
    for svc in services:
        index.set_service(svc)
    for eps in slices:
        index.set_slice(eps)
    return index


class Syncer:
    """One mode's applier over one namespace, fed from a ServiceIndex as the proxier does."""

    def __init__(self, mode: str, netns: str, index: ServiceIndex) -> None:
        self.mode, self.index = mode, index
        self.iptables = IptablesApplier(netns=netns)
        self.nft = NftablesApplier(NFT_SETTINGS, netns=netns)
        self.synced = False

    async def sync(self) -> tuple[float, int]:
        """Seconds and transaction bytes of one sync (full the first time, partial after)."""
        started = time.perf_counter()
        ports = self.index.ports()
        changed = self.index.take_changed()
        if self.mode == "nftables":
            text = (await self.nft.apply(ports, changed, full=not self.synced)).text
        else:
            text = (await self.iptables.apply(render(self.index.snapshot(), SETTINGS), full=not self.synced)).text
        self.synced = True
        return time.perf_counter() - started, len(text)


async def full_syncs(sizes: list[int], repeat: int, iptables_max: int) -> None:
    print("full sync into an empty namespace (3 endpoints per Service), best of", repeat)
    for count in sizes:
        services, slices = make_cluster(count)
        for mode in MODES:
            if mode == "iptables" and count > iptables_max:
                print(f"  {count:6d} Services  {mode:8s}: not run (above --iptables-max {iptables_max})")
                continue
            runs = []
            for _ in range(repeat):
                with scratch() as lab:
                    syncer = Syncer(mode, lab.add_netns("node"), index_of(services, slices))
                    try:
                        runs.append(await syncer.sync())
                    except CommandError as exc:
                        print(f"  {count:6d} Services  {mode:8s}: failed: {str(exc)[:100]}")
                        break
            if runs:
                seconds, size = min(runs)
                print(f"  {count:6d} Services  {mode:8s}: {seconds * 1000:8.0f} ms  "
                      f"(median {statistics.median(r[0] for r in runs) * 1000:.0f} ms, "
                      f"input {size / 1024:.0f} KiB)")


async def one_change(count: int, repeat: int) -> None:
    services, slices = make_cluster(count)
    print(f"\nat {count} Services with the rules in place: one endpoint replaced, median of {repeat}")
    for mode in MODES:
        with scratch() as lab:
            index = index_of(services, slices)
            syncer = Syncer(mode, lab.add_netns("node"), index)
            try:
                await syncer.sync()
            except CommandError as exc:
                print(f"  {mode:8s}: full sync failed: {str(exc)[:100]}")
                continue
            changes, nochange = [], []
            for n in range(repeat):
                victim = (n + 1) * 37 % count
                eps = dict(slices[victim])
                eps["endpoints"] = [{**eps["endpoints"][0], "addresses": [_ip("10.245", n + 1)]},
                                    *eps["endpoints"][1:]]
                index.set_slice(eps)
                changes.append(await syncer.sync())
                nochange.append(await syncer.sync())
            med = sorted(changes)[len(changes) // 2]
            print(f"  {mode:8s}: one endpoint changed {med[0] * 1000:7.1f} ms ({med[1]} bytes written); "
                  f"nothing changed {statistics.median(r[0] for r in nochange) * 1000:7.1f} ms")


SERVER = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(4096)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""

CLIENT = r"""
import socket, sys, time
ip, seconds = sys.argv[1], float(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
done, failed, end = 0, 0, time.monotonic() + seconds
while time.monotonic() < end:
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    try:
        c.connect((ip, 80)); done += 1
    except OSError:
        failed += 1
    c.close()
print(done / seconds, failed, flush=True)
"""


async def connections_per_second(count: int, mode: str, seconds: float) -> tuple[float, int]:
    """New connections per second through the ClusterIP of the Service matched last."""
    services, slices = make_cluster(count, endpoints=1)
    target = max(range(count), key=lambda i: services[i]["metadata"]["name"])
    slices[target]["endpoints"] = [{"addresses": ["10.250.0.2"], "conditions": {"ready": True},
                                    "nodeName": NODE}]
    with scratch() as lab:
        node, client, backend = lab.add_netns("node"), lab.add_netns("client"), lab.add_netns("be")
        lab.link(client, "eth0", "10.0.0.2/24", node, "eth-c", "10.0.0.1/24")
        lab.link(backend, "eth0", "10.250.0.2/24", node, "eth-b", "10.250.0.1/24")
        lab.exec(client, ["ip", "route", "add", "default", "via", "10.0.0.1"])
        lab.exec(backend, ["ip", "route", "add", "default", "via", "10.250.0.1"])
        lab.exec(node, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        await Syncer(mode, node, index_of(services, slices)).sync()
        lab.spawn(backend, SERVER)
        proc = lab.spawn(client, CLIENT, services[target]["spec"]["clusterIP"], str(seconds))
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        rate, failed = proc.stdout.readline().split()
        return float(rate), int(failed)


async def packets(sizes: list[int], seconds: float) -> None:
    print(f"\nnew TCP connections per second through a ClusterIP ({seconds:g} s each, one client)")
    for count in sizes:
        for mode in MODES:
            rate, failed = await connections_per_second(count, mode, seconds)
            print(f"  {count:6d} Services  {mode:8s}: {rate:8.0f} conn/s" + (f"  ({failed} failed)" if failed else ""))


async def main(args: argparse.Namespace) -> None:
    MODES[:] = args.modes
    await full_syncs(args.sizes, args.repeat, args.iptables_max)
    await one_change(args.change_at, args.repeat)
    await packets(args.packet_sizes, args.seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000, 20000])
    parser.add_argument("--modes", nargs="+", choices=("iptables", "nftables"), default=["iptables", "nftables"])
    parser.add_argument("--iptables-max", type=int, default=10000)
    parser.add_argument("--change-at", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--packet-sizes", type=int, nargs="+", default=[100, 10000])
    parser.add_argument("--seconds", type=float, default=3.0)
    asyncio.run(main(parser.parse_args()))
