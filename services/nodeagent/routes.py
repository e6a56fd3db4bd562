"""Routes between nodes: every other node's pod range goes via that node's InternalIP.

This is what kind's kindnet does on a flat node network: no overlay, no NAT, a pod's packet
leaves its node with the pod's own address as the source. `desired_routes` is the pure part;
`RouteTable` compares it with the kernel's routes that carry this project's protocol marker and
adds or removes only those, so routes made by anyone else (the kernel, ptp's per-pod routes,
an administrator) are never touched.
"""
from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from services.nodeagent import netns

log = logging.getLogger(__name__)

# rtm_protocol of the routes the agent owns (iproute2 shows it as "proto 77"); free in
# /etc/iproute2/rt_protos, which lists the values routing daemons claim.
ROUTE_PROTO = 77
MAIN_TABLE = 254
Route = tuple[str, str]  # (destination CIDR, gateway)


def internal_ip(node: Mapping[str, Any]) -> str | None:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP" and addr.get("address"):
            return str(addr["address"])
    return None


def desired_routes(my_node: str, nodes: Iterable[Mapping[str, Any]]) -> set[Route]:
    """(podCIDR, InternalIP) of every other node that has both, well formed. A node being
    deleted keeps its route until it is gone: its pods may still answer."""
    out: set[Route] = set()
    for node in nodes:
        meta, spec = node.get("metadata") or {}, node.get("spec") or {}
        if meta.get("name") == my_node:
            continue
        cidr, via = spec.get("podCIDR"), internal_ip(node)
        if not cidr or not via:
            continue
        try:
            network = ipaddress.ip_network(cidr, strict=True)
            gateway = ipaddress.ip_address(via)
        except ValueError:
            continue
        if network.version != gateway.version or gateway in network:
            continue
        out.add((str(network), str(gateway)))
    return out


def route_changes(desired: set[Route], present: set[Route]) -> tuple[set[Route], set[Route]]:
    """-> (to add or replace, to delete). A changed gateway for one CIDR is a replace, not a
    delete: deleting after replacing would drop the new route."""
    to_add = desired - present
    desired_cidrs = {cidr for cidr, _ in desired}
    to_delete = {r for r in present - desired if r[0] not in desired_cidrs}
    return to_add, to_delete


class RouteTable:
    """The node's main routing table, seen through the routes marked ROUTE_PROTO."""

    def __init__(self, host_netns: str | None = None) -> None:
        self.host_netns = host_netns

    def _present(self, ipr: Any) -> set[Route]:
        out = set()
        for r in ipr.get_routes(family=2, proto=ROUTE_PROTO, table=MAIN_TABLE):
            dst, gw = r.get_attr("RTA_DST"), r.get_attr("RTA_GATEWAY")
            if dst and gw:
                out.add((f"{dst}/{r['dst_len']}", gw))
        return out

    def _sync(self, desired: set[Route]) -> tuple[set[Route], set[Route]]:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            to_add, to_delete = route_changes(desired, self._present(ipr))
            for cidr, via in sorted(to_add):
                ipr.route("replace", dst=cidr, gateway=via, proto=ROUTE_PROTO, table=MAIN_TABLE)
            for cidr, via in sorted(to_delete):
                ipr.route("del", dst=cidr, gateway=via, proto=ROUTE_PROTO, table=MAIN_TABLE)
        return to_add, to_delete

    async def sync(self, desired: set[Route]) -> tuple[set[Route], set[Route]]:
        """Make the marked routes equal `desired`; -> (added, deleted)."""
        added, deleted = await netns.call_in(self.host_netns, lambda: self._sync(desired))
        for cidr, via in sorted(added):
            log.info("route %s via %s added", cidr, via)
        for cidr, via in sorted(deleted):
            log.info("route %s via %s removed", cidr, via)
        return added, deleted

    async def present(self) -> set[Route]:
        from pyroute2 import IPRoute

        def read() -> set[Route]:
            with IPRoute() as ipr:
                return self._present(ipr)
        return await netns.call_in(self.host_netns, read)
