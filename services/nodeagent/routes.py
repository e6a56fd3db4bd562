"""Routes between nodes: every other node's pod range goes via that node's InternalIP.

This is what kind's kindnet does on a flat node network: no overlay, no NAT, a pod's packet
leaves its node with the pod's own address as the source. `desired_routes` is the pure part
(`kubecore.api.nodenet.pod_routes`: only a node subnet of the cluster CIDR via an address of
the node network, never the default route or anything wider, whatever a Node object says);
`RouteTable` compares it with the kernel's routes that carry this project's protocol marker and
adds or removes only those, so routes made by anyone else (the kernel, ptp's per-pod routes,
an administrator) are never touched. `RouteTable.sync` makes the same check again before it
writes: a route that fails it is logged once and never installed.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from kubecore.api.nodenet import NodeRanges, Refusal, Route, pod_routes, route_problem
from services.nodeagent import netns

log = logging.getLogger(__name__)

# rtm_protocol of the routes the agent owns (iproute2 shows it as "proto 77"); free in
# /etc/iproute2/rt_protos, which lists the values routing daemons claim.
ROUTE_PROTO = 77
MAIN_TABLE = 254


def desired_routes(my_node: str, nodes: Iterable[Mapping[str, Any]],
                   ranges: NodeRanges) -> tuple[set[Route], list[Refusal]]:
    """(podCIDR, InternalIP) of every other node whose pair passes the node network rules,
    and the refused ones with why."""
    return pod_routes(nodes, ranges, skip=my_node)


def route_changes(desired: set[Route], present: set[Route]) -> tuple[set[Route], set[Route]]:
    """-> (to add or replace, to delete). A changed gateway for one CIDR is a replace, not a
    delete: deleting after replacing would drop the new route."""
    to_add = desired - present
    desired_cidrs = {cidr for cidr, _ in desired}
    to_delete = {r for r in present - desired if r[0] not in desired_cidrs}
    return to_add, to_delete


class RouteTable:
    """The node's main routing table, seen through the routes marked ROUTE_PROTO."""

    def __init__(self, ranges: NodeRanges, host_netns: str | None = None) -> None:
        self.ranges = ranges
        self.host_netns = host_netns
        self._told: set[tuple[str, str, str]] = set()

    def tell_refused(self, refused: Iterable[Refusal]) -> None:
        """Log each refused route once (a Node's events would repeat it on every sync)."""
        for r in refused:
            key = (r.node, r.cidr, r.via)
            if key not in self._told:
                self._told.add(key)
                log.warning("route %s via %s (node %s) refused: %s", r.cidr, r.via, r.node or "?", r.why)

    def allowed(self, desired: set[Route]) -> set[Route]:
        """`desired` without the routes the node network rules refuse (logged once)."""
        out = set()
        for cidr, via in desired:
            why = route_problem(cidr, via, self.ranges)
            if why is None:
                out.add((cidr, via))
            else:
                self.tell_refused([Refusal("", cidr, via, why)])
        return out

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
        allowed = self.allowed(desired)
        added, deleted = await netns.call_in(self.host_netns, lambda: self._sync(allowed))
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
