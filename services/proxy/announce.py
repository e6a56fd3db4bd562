"""Answering ARP for load-balancer addresses on the node network (layer-2 mode).

The rules (KUBE-SERVICES -> KUBE-EXT-) make every node DNAT traffic to a load-balancer
ingress IP, but a host on the node network only sends it to a node once some node answers
ARP for that address. This is MetalLB's layer-2 mode, and kube-vip's way of doing it: one
node per address holds it, the others stay silent (two answers would make the hosts'
neighbour caches flap).

Which node: each proxy computes the same election without talking to the others: among the
Nodes whose Ready condition is True, the one with the smallest sha256("<node>#<ip>"),
MetalLB's per-address hash, so addresses spread over the nodes and a node that stops being
Ready hands its addresses to the next in each address's order. The elected node adds the
address to its node interface as a /32 with the label `<iface>:lb` (the kernel then answers
ARP for it; the label is how the proxy finds its own addresses again after a restart); every
other node removes it. The address being local also lets the node itself reach it.

No gratuitous ARP is sent on a change of owner: a host's stale neighbour entry is probed and
re-resolved within seconds (the kernel's base_reachable_time and probes).
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from services.proxy.iptables import run_command
from services.proxy.model import load_balancer_vips

log = logging.getLogger(__name__)

JsonDict = Mapping[str, Any]
LABEL_SUFFIX = ":lb"


def ready_nodes(nodes: Iterable[JsonDict]) -> list[str]:
    """Names of the Nodes whose Ready condition is True."""
    names = []
    for node in nodes:
        conditions = (node.get("status") or {}).get("conditions") or []
        if any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in conditions):
            name = (node.get("metadata") or {}).get("name")
            if isinstance(name, str) and name:
                names.append(name)
    return names


def elected(ip: str, nodes: Iterable[str]) -> str | None:
    """The node that answers for `ip`: the smallest sha256("<node>#<ip>")."""
    return min(nodes, key=lambda n: hashlib.sha256(f"{n}#{ip}".encode()).digest(), default=None)


def addresses_to_announce(services: Iterable[JsonDict], nodes: Iterable[JsonDict],
                          node_name: str) -> frozenset[str]:
    """The load-balancer addresses this node holds."""
    ready = ready_nodes(nodes)
    wanted: set[str] = set()
    for svc in services:
        if (svc.get("spec") or {}).get("type") != "LoadBalancer":
            continue
        wanted.update(load_balancer_vips(svc))
    return frozenset(ip for ip in wanted if elected(ip, ready) == node_name)


class Addresses(Protocol):
    """The node interface's announced addresses (the real `ip` commands, or a fake)."""

    async def list(self) -> set[str]: ...

    async def add(self, ip: str) -> None: ...

    async def delete(self, ip: str) -> None: ...


class IpAddresses:
    """`ip addr` on `interface`, inside `netns` if given; our addresses carry `<iface>:lb`."""

    def __init__(self, interface: str, *, netns: str | None = None) -> None:
        self.interface = interface
        self.label = (interface + LABEL_SUFFIX)[:15]
        self.netns = netns

    async def list(self) -> set[str]:
        res = await run_command(["ip", "-4", "-o", "addr", "show", "dev", self.interface,
                                 "label", self.label], netns=self.netns)
        found = set()
        for line in res.stdout.splitlines():
            fields = line.split()
            if "inet" in fields:
                found.add(fields[fields.index("inet") + 1].split("/")[0])
        return found

    async def add(self, ip: str) -> None:
        ipaddress.IPv4Address(ip)  # never hand `ip` anything but an address
        await run_command(["ip", "addr", "replace", f"{ip}/32", "dev", self.interface,
                           "label", self.label], netns=self.netns)

    async def delete(self, ip: str) -> None:
        ipaddress.IPv4Address(ip)
        await run_command(["ip", "addr", "del", f"{ip}/32", "dev", self.interface],
                          netns=self.netns, ok_codes=(0, 2))


async def announce(addresses: Addresses, wanted: frozenset[str]) -> tuple[set[str], set[str]]:
    """Make the interface hold exactly `wanted` of our addresses; -> (added, deleted)."""
    current = await addresses.list()
    added, deleted = set(wanted) - current, current - set(wanted)
    for ip in sorted(added):
        await addresses.add(ip)
    for ip in sorted(deleted):
        await addresses.delete(ip)
    if added or deleted:
        log.info("load-balancer addresses announced", extra={
            "added": ",".join(sorted(added)) or "-", "deleted": ",".join(sorted(deleted)) or "-"})
    return added, deleted
