"""Which UDP conntrack entries become wrong after a sync (pure planning).

A UDP "connection" has no FIN: the conntrack entry that DNATs a client's
flow to an endpoint lives on as long as the client keeps sending (a DNS
resolver reusing its source port, for example).  When that endpoint goes
away, packets would keep going to a dead address.  kube-proxy therefore
deletes those entries after the new rules are in place; so do we.  TCP needs
nothing: the endpoint's RST or the client's timeout ends the flow.

Also, while a service has no endpoints, entries may have been created for
the cluster IP without DNAT; once endpoints appear they must go, or the
client keeps talking to nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from services.proxy.model import ServicePort, Snapshot


@dataclass(frozen=True, slots=True, order=True)
class UdpFlowFilter:
    """Arguments for one `conntrack -D -p udp ...` call.

    Exactly one of `orig_dst` (a cluster, external or load-balancer IP) or `orig_port_dst` (a node port)
    is set; `dst_nat` narrows it to flows DNATed to one endpoint IP.
    """

    orig_dst: str | None = None
    orig_port_dst: int | None = None
    dst_nat: str | None = None

    def conntrack_args(self) -> list[str]:
        args = ["-D", "-p", "udp"]
        if self.orig_dst is not None:
            args += ["--orig-dst", self.orig_dst]
        if self.orig_port_dst is not None:
            args += ["--orig-port-dst", str(self.orig_port_dst)]
        if self.dst_nat is not None:
            args += ["--dst-nat", self.dst_nat]
        return args


def stale_udp_flows(previous: Snapshot, current: Snapshot) -> list[UdpFlowFilter]:
    """Flow filters to delete after moving from `previous` to `current` rules."""
    flows: set[UdpFlowFilter] = set()
    now = current.by_key()
    before = previous.by_key()
    for key, old in before.items():
        if old.protocol != "UDP":
            continue
        new = now.get(key)
        still_used = {ep.ip for ep in new.usable_endpoints()} if new else set()
        for ep in old.usable_endpoints():
            if ep.ip in still_used:
                continue
            flows.update(UdpFlowFilter(orig_dst=ip, dst_nat=ep.ip) for ip in _addresses(old))
            if old.node_port is not None:
                flows.add(UdpFlowFilter(orig_port_dst=old.node_port, dst_nat=ep.ip))
    for key, new in now.items():
        if new.protocol != "UDP" or not new.usable_endpoints():
            continue
        earlier = before.get(key)
        if earlier is not None and earlier.usable_endpoints():
            continue
        flows.update(UdpFlowFilter(orig_dst=ip) for ip in _addresses(new))
        if new.node_port is not None:
            flows.add(UdpFlowFilter(orig_port_dst=new.node_port))
    return sorted(flows, key=lambda f: (f.orig_dst or "", f.orig_port_dst or 0, f.dst_nat or ""))


def _addresses(sp: ServicePort) -> tuple[str, ...]:
    """Every address a flow to the service port may have been sent to: its cluster IP, its
    external IPs and its load-balancer IPs (kube-proxy clears all three)."""
    return (sp.cluster_ip, *sp.external_ips, *sp.load_balancer_ips)
