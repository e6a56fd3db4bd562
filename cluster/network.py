"""The nodes' network: one namespace per node on a bridge, and containment in the root
namespace.

Layout: a bridge `<name>-br0` in the root namespace holds the gateway address
(control plane: etcd, API server, controllers, DNS listen there or on loopback); each
node is a network namespace with `eth0` on that bridge. Node-to-node traffic is
bridged at layer 2, so the root namespace never forwards: forwarding stays off
there. Nodes get no default route, so nothing from a node or a pod can reach the
machine's real network; their only route off the node network is the service range via the
gateway (as a real node's default route carries it), which the root namespace blackholes. In
the root namespace the service and pod ranges are blackholed; the only more specific routes
are per-node pod ranges via that node.
Every route the launcher adds carries protocol number ROUTE_PROTO, so teardown finds
them without a state file.
"""
from __future__ import annotations

import ipaddress
import logging
import subprocess

from cluster.config import ROUTE_PROTO, ClusterConfig
from kubecore.api.nodenet import NodeRanges, route_problem

log = logging.getLogger("cluster.network")


class NetworkError(RuntimeError):
    pass


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["ip", *(("-n", netns) if netns else ()), *args]
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and res.returncode != 0:
        raise NetworkError(f"{' '.join(argv)}: {res.stderr.strip()}")
    return res


def list_netns() -> list[str]:
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def link_exists(name: str) -> bool:
    return ip("link", "show", "dev", name, check=False).returncode == 0


def forwarding_enabled() -> bool:
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        return f.read().strip() == "1"


def overlapping_routes(cfg: ClusterConfig, netns: str | None = None) -> list[str]:
    """Routes of the machine (any table) that overlap the cluster's ranges, other than ours."""
    ours = {cfg.bridge}
    out = ip("-4", "route", "show", "table", "all", netns=netns, check=False).stdout
    wanted = [ipaddress.IPv4Network(r) for r in cfg.ranges()]
    clashes = []
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            continue
        dest = parts[1] if parts[0] in ("blackhole", "unreachable", "prohibit", "local", "broadcast") else parts[0]
        if dest == "default" or f"proto {ROUTE_PROTO}" in line or "table local" in line:
            continue
        if "dev" in parts and parts[parts.index("dev") + 1] in ours:
            continue
        try:
            net = ipaddress.IPv4Network(dest, strict=False)
        except ValueError:
            continue
        if any(net.overlaps(w) for w in wanted):
            clashes.append(line.strip())
    return clashes


def create(cfg: ClusterConfig) -> None:
    ip("link", "add", cfg.bridge, "type", "bridge")
    for address in cfg.control_plane_ips:  # the gateway, and with --ha the second control-plane host
        ip("addr", "add", f"{address}/{cfg.prefixlen}", "dev", cfg.bridge)
    ip("link", "set", cfg.bridge, "up")
    for r in (cfg.service_cidr, cfg.cluster_cidr):
        ip("route", "replace", "blackhole", r, "proto", str(ROUTE_PROTO))
    for i in range(1, cfg.nodes + 1):
        ns, veth = cfg.node_netns(i), cfg.veth(i)
        ip("netns", "add", ns)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", veth, "master", cfg.bridge)
        ip("link", "set", veth, "up")
        ip("link", "set", "lo", "up", netns=ns)
        ip("addr", "add", f"{cfg.node_ip(i)}/{cfg.prefixlen}", "dev", "eth0", netns=ns)
        ip("link", "set", "eth0", "up", netns=ns)
        # The route a real node's default route gives the service range: the kernel needs one
        # before the nat table's DNAT is consulted (a node's own connection to a cluster IP),
        # and a cluster IP without endpoints must reach filter FORWARD, where kube-proxy's
        # REJECT answers "connection refused". Nothing goes further: the gateway is the root
        # namespace, which blackholes the range and does not forward.
        ip("route", "replace", cfg.service_cidr, "via", cfg.gateway_ip, "dev", "eth0", netns=ns)


def node_ranges(cfg: ClusterConfig) -> NodeRanges:
    return NodeRanges.parse(cfg.cluster_cidr, cfg.node_cidr_mask, cfg.node_cidr)


def route_pod_range(cfg: ClusterConfig, pod_cidr: str, node_ip: str, *,
                    netns: str | None = None) -> str | None:
    """The root namespace reaches a node's pods through that node (DNS answers go back).
    Only a route that passes the node network rules (`kubecore.api.nodenet.route_problem`:
    a node subnet of the cluster CIDR via an address of the node network) is installed;
    -> why the route was refused, None once it is in place."""
    why = route_problem(pod_cidr, node_ip, node_ranges(cfg))
    if why is not None:
        return why
    ip("route", "replace", pod_cidr, "via", node_ip, "proto", str(ROUTE_PROTO), netns=netns)
    return None


def pids_in_netns(ns: str) -> list[int]:
    out = ip("netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def destroy(cfg: ClusterConfig, kill=None) -> list[str]:
    """Remove everything `create` and the node agents made; idempotent. `kill(pids)` ends the
    processes still running inside the namespaces (pod containers, agents)."""
    removed = []
    prefix = f"{cfg.name}-node-"
    for ns in list_netns():
        if not ns.startswith(prefix) and not ns.startswith(f"mc-{prefix}"):
            continue
        if kill is not None:
            kill(pids_in_netns(ns))
        ip("netns", "del", ns, check=False)
        removed.append(f"netns {ns}")
    for i in range(1, 65):
        veth = cfg.veth(i)
        if link_exists(veth):
            ip("link", "del", veth, check=False)
            removed.append(f"link {veth}")
    if link_exists(cfg.bridge):
        ip("link", "del", cfg.bridge, check=False)
        removed.append(f"link {cfg.bridge}")
    out = ip("-4", "route", "show", "proto", str(ROUTE_PROTO), check=False).stdout
    for line in out.splitlines():
        if line.strip() and _route_of(cfg, line):
            ip("route", "del", *line.split(), check=False)
            removed.append(f"route {line.strip()}")
    return removed


def _route_of(cfg: ClusterConfig, line: str) -> bool:
    """Whether a route of ours (proto ROUTE_PROTO) is this cluster's: its destination inside the
    cluster's service, pod or node ranges. Another cluster running beside it keeps its routes."""
    words = line.split()
    dest = words[1] if words[0] in ("blackhole", "unreachable", "prohibit") else words[0]
    try:
        net = ipaddress.ip_network(dest, strict=False)
    except ValueError:
        return False
    ours = (ipaddress.ip_network(c, strict=False) for c in (cfg.cluster_cidr, cfg.service_cidr, cfg.node_cidr))
    return any(net.version == r.version and net.subnet_of(r) for r in ours)  # type: ignore[arg-type]
