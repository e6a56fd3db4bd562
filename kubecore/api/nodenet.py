"""What a Node object may ask of the hosts' networks, in one place.

A Node's `spec.podCIDR` and its InternalIP become routes (`<podCIDR> via <InternalIP>`) in the
launcher's root namespace and in every other node, and the InternalIP is where the API server
dials the node agent. Whoever may write a Node could otherwise point a route at the default
route's half (`0.0.0.0/1`) or make the API server dial any address. So the same rules hold at
every step: the API server refuses such Nodes (422), and the launcher and the node agents
install only routes that pass them, for objects stored before a rule existed too.

The rules, given the cluster's ranges (`NodeRanges`: the cluster CIDR, the node mask size
and, when known, the node network):

- a pod range is one node subnet of the cluster CIDR: inside it, exactly the node mask, no
  host bits set;
- a node address is a plain IPv4/IPv6 address (no port, zone or anything else), inside the
  node network when there is one;
- a route's gateway is such a node address, outside the cluster CIDR and never inside the
  range it leads to; with no node network given, never loopback, unspecified, multicast or
  link-local; nothing wider than a node subnet is ever a route.

Pure functions over strings and `ipaddress` objects: no I/O.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Route = tuple[str, str]  # (destination CIDR, gateway), both in canonical form

NODE_ADDRESS_TYPES = ("InternalIP", "ExternalIP")
INVALID_IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


@dataclass(frozen=True)
class NodeRanges:
    """The cluster's ranges as a component's flags give them."""

    cluster_cidr: Network
    node_mask: int
    node_network: Network | None = None

    @classmethod
    def parse(cls, cluster_cidr: str, node_mask: int, node_network: str = "") -> NodeRanges:
        """From flags; ValueError names the flag that is wrong."""
        try:
            cluster = ipaddress.ip_network(cluster_cidr, strict=True)
        except ValueError as exc:
            raise ValueError(f"cluster CIDR {cluster_cidr!r}: {exc}") from None
        if cluster.prefixlen == 0:
            raise ValueError(f"cluster CIDR {cluster_cidr!r} may not be the whole address space")
        if not cluster.prefixlen <= node_mask <= cluster.max_prefixlen:
            raise ValueError(f"node CIDR mask size {node_mask} does not fit cluster CIDR {cluster}")
        nodes = None
        if node_network:
            try:
                nodes = ipaddress.ip_network(node_network, strict=True)
            except ValueError as exc:
                raise ValueError(f"node network {node_network!r}: {exc}") from None
        return cls(cluster, node_mask, nodes)


def parse_cidr(text: Any) -> Network | None:
    """A CIDR as Go's ParseCIDR reads one (host bits allowed), or None."""
    if not isinstance(text, str) or "/" not in text or "%" in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def parse_address(text: Any) -> Address | None:
    """A plain IP address, or None: no port, no IPv6 zone, no brackets, no spaces."""
    if not isinstance(text, str) or "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def pod_cidr_problem(cidr: Any, ranges: NodeRanges) -> str | None:
    """Why `cidr` cannot be a node's pod range, or None. The words for a range outside the
    cluster CIDR are the node IPAM controller's."""
    net = parse_cidr(cidr)
    if net is None:
        return "must be valid CIDR"
    cluster = ranges.cluster_cidr
    if net.version != cluster.version or not net.subnet_of(cluster):  # type: ignore[arg-type]
        return f"cidr {cidr} is out the range of cluster cidr {cluster}"
    if net.prefixlen != ranges.node_mask:
        return (f"must be a /{ranges.node_mask} (the node CIDR mask size) of the cluster cidr "
                f"{cluster}")
    if str(net) != cidr:
        return f"must be a network address with no host bits set (e.g. {net})"
    return None


def node_address_problem(address: Any, ranges: NodeRanges | None) -> str | None:
    """Why `address` cannot be a node's InternalIP/ExternalIP, or None."""
    ip = parse_address(address)
    if ip is None:
        return INVALID_IP
    nodes = ranges.node_network if ranges is not None else None
    if nodes is not None and ip not in nodes:
        return f"must be an address of the node network {nodes}"
    return None


def _gateway_problem(via: Address, dest: Network, ranges: NodeRanges) -> str | None:
    if via.version != dest.version:
        return "the gateway is not of the range's IP family"
    if via in ranges.cluster_cidr or via in dest:
        return "the gateway is inside the pod ranges"
    if ranges.node_network is not None:
        if via not in ranges.node_network:
            return f"the gateway is not in the node network {ranges.node_network}"
        if dest.overlaps(ranges.node_network):
            return f"the range overlaps the node network {ranges.node_network}"
    elif via.is_loopback or via.is_unspecified or via.is_multicast or via.is_link_local:
        return "the gateway is not a node's unicast address"
    return None


def route_problem(cidr: str, via: str, ranges: NodeRanges) -> str | None:
    """Why `<cidr> via <via>` must not be installed, or None: the one check the launcher and
    the node agents make before touching a routing table."""
    why = pod_cidr_problem(cidr, ranges)
    if why is not None:
        return f"pod range {cidr!r}: {why}"
    dest = ipaddress.ip_network(cidr)
    if dest.prefixlen == 0:  # unreachable through the checks above; kept as the last word
        return "never the default route"
    gateway = parse_address(via)
    if gateway is None:
        return f"gateway {via!r}: {INVALID_IP}"
    why = _gateway_problem(gateway, dest, ranges)
    return f"gateway {via!r}: {why}" if why is not None else None


def internal_ip(node: Mapping[str, Any]) -> Any:
    """The first InternalIP a Node lists, as stored (unchecked), or None."""
    status = node.get("status")
    addresses = status.get("addresses") if isinstance(status, dict) else None
    for addr in addresses if isinstance(addresses, list) else ():
        if isinstance(addr, dict) and addr.get("type") == "InternalIP" and addr.get("address"):
            return addr["address"]
    return None


@dataclass(frozen=True)
class Refusal:
    node: str
    cidr: str
    via: str
    why: str


def pod_routes(nodes: Iterable[Mapping[str, Any]], ranges: NodeRanges, *,
               skip: str | None = None) -> tuple[set[Route], list[Refusal]]:
    """(podCIDR, InternalIP) of every node but `skip` that has both and passes
    `route_problem`; and the refused ones, with why. A node being deleted keeps its route
    until it is gone: its pods may still answer."""
    routes: set[Route] = set()
    refused: list[Refusal] = []
    for node in nodes:
        meta, spec = node.get("metadata") or {}, node.get("spec") or {}
        name = str(meta.get("name") or "")
        if name == skip or not isinstance(spec, dict):
            continue
        cidr, via = spec.get("podCIDR"), internal_ip(node)
        if not cidr or not via:
            continue
        why = route_problem(cidr, via, ranges) if isinstance(cidr, str) and isinstance(via, str) \
            else "not strings"
        if why is None:
            routes.add((cidr, str(ipaddress.ip_address(via))))
        else:
            refused.append(Refusal(name, str(cidr), str(via), why))
    return routes, refused


__all__ = ["NodeRanges", "Refusal", "Route", "internal_ip", "node_address_problem", "parse_address",
           "parse_cidr", "pod_cidr_problem", "pod_routes", "route_problem"]
