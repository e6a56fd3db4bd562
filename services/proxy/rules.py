"""The whole desired ruleset, rendered from a snapshot as iptables-restore text.

Pure: no I/O, no clock, no randomness.  The same snapshot and settings give the
same bytes, which is what makes golden tests and "did this chain change?"
comparisons possible.

The layout follows kube-proxy's iptables proxier:

nat:
  PREROUTING, OUTPUT  -> KUBE-SERVICES     ("kubernetes service portals")
  POSTROUTING         -> KUBE-POSTROUTING  (masquerade packets carrying the mark)
  KUBE-SERVICES       one rule per service port with usable endpoints
                      -> KUBE-SVC-<hash>; one per external IP and load-balancer ingress IP
                      -> KUBE-EXT-<hash>; last rule: LOCAL destinations -> KUBE-NODEPORTS
  KUBE-EXT-<hash>     traffic to an external or load-balancer address: mark for SNAT (the
                      endpoint may be on another node), -> KUBE-SVC-<hash>
  KUBE-SVC-<hash>     mark off-cluster clients for SNAT, then pick an endpoint with
                      `statistic --mode random` probabilities 1/n, 1/(n-1), ..., last unconditional
  KUBE-SEP-<hash>     mark hairpin traffic for SNAT, DNAT to the endpoint
  KUBE-NODEPORTS      mark for SNAT, -> KUBE-SVC-<hash>
filter:
  INPUT, FORWARD, OUTPUT -> KUBE-SERVICES: REJECT new connections to service ports
                            without endpoints (an immediate "connection refused"
                            instead of a timeout)
  INPUT, FORWARD      -> KUBE-EXTERNAL-SERVICES: the same for external IPs, load-balancer
                         IPs and node ports
  FORWARD             -> KUBE-FORWARD: accept marked and established service traffic
                         even if the FORWARD policy is DROP
"""
from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from services.proxy.model import Endpoint, ServicePort, Snapshot

KUBE_SERVICES: Final = "KUBE-SERVICES"
KUBE_NODEPORTS: Final = "KUBE-NODEPORTS"
KUBE_POSTROUTING: Final = "KUBE-POSTROUTING"
KUBE_MARK_MASQ: Final = "KUBE-MARK-MASQ"
KUBE_EXTERNAL_SERVICES: Final = "KUBE-EXTERNAL-SERVICES"
KUBE_FORWARD: Final = "KUBE-FORWARD"

SERVICE_CHAIN_PREFIX: Final = "KUBE-SVC-"
ENDPOINT_CHAIN_PREFIX: Final = "KUBE-SEP-"
EXTERNAL_CHAIN_PREFIX: Final = "KUBE-EXT-"
# Chains whose whole set is owned by this proxy: any existing chain with these
# prefixes that the desired ruleset does not mention is stale and gets deleted.
OWNED_PREFIXES: Final = (SERVICE_CHAIN_PREFIX, ENDPOINT_CHAIN_PREFIX, EXTERNAL_CHAIN_PREFIX)

NODEPORTS_LAST_RULE_COMMENT: Final = (
    "kubernetes service nodeports; NOTE: this must be the last rule in this chain"
)


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Per-node inputs of the renderer that do not come from the API."""

    node_name: str
    # Traffic to a cluster IP from outside this CIDR gets SNAT so replies come back
    # through this node.  None disables that rule (as kube-proxy without --cluster-cidr).
    cluster_cidr: str | None
    masquerade_mark: str = "0x4000"
    # iptables >= 1.6.2 and the kernel support fully randomised SNAT ports,
    # which avoids the source-port collisions kube-proxy hit under load.
    masquerade_random_fully: bool = True


@dataclass(frozen=True, slots=True)
class JumpRule:
    """A rule in a built-in chain that hands traffic to one of our chains.

    Built-in chains are shared with everyone else on the node, so they are
    never flushed; the applier inserts these only when absent.
    """

    table: str
    chain: str
    target: str
    comment: str
    matches: tuple[str, ...] = ()

    def spec(self) -> str:
        """Rule arguments after `-A <chain>` (also valid after `-I`/`-D`)."""
        parts = [*self.matches, "-m", "comment", "--comment", quote(self.comment), "-j", self.target]
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class TableRules:
    """Our chains of one table, in declaration order, each with its `-A` lines."""

    name: str
    chains: Mapping[str, tuple[str, ...]]

    def lines(self) -> Iterator[str]:
        yield f"*{self.name}"
        for chain in self.chains:
            yield f":{chain} - [0:0]"
        for rules in self.chains.values():
            yield from rules
        yield "COMMIT"


@dataclass(frozen=True, slots=True)
class Ruleset:
    """Desired state of the nat and filter tables."""

    nat: TableRules
    filter: TableRules
    jumps: tuple[JumpRule, ...] = field(default=())

    def tables(self) -> tuple[TableRules, TableRules]:
        return (self.nat, self.filter)

    def restore_text(self) -> str:
        """The full iptables-restore input for our chains (jumps are added by the applier)."""
        return "\n".join(line for table in self.tables() for line in table.lines()) + "\n"


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """First 16 base32 chars of sha256(name + protocol), as kube-proxy's portProtoHash.

    iptables chain names are limited to 28 characters; a hash keeps them short
    and identical on every node for the same service port.
    """
    return _hash16(service_port_name + protocol)


def _hash16(text: str) -> str:
    # 16 base32 characters encode exactly the first 10 bytes, so encoding
    # only those gives the same prefix at a third of the (pure Python) cost.
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:10]).decode()


@functools.lru_cache(maxsize=1 << 16)
def service_chain_name(service_port_name: str, protocol: str) -> str:
    """`KUBE-SVC-<hash>`; protocol is lowercased as kube-proxy does.

    Cached: every sync renders every service, and names never change.
    """
    return SERVICE_CHAIN_PREFIX + port_proto_hash(service_port_name, protocol.lower())


@functools.lru_cache(maxsize=1 << 16)
def external_chain_name(service_port_name: str, protocol: str) -> str:
    """`KUBE-EXT-<hash>`: the same hash as the service chain's."""
    return EXTERNAL_CHAIN_PREFIX + port_proto_hash(service_port_name, protocol.lower())


@functools.lru_cache(maxsize=1 << 18)
def endpoint_chain_name(service_port_name: str, protocol: str, endpoint: str) -> str:
    """`KUBE-SEP-<hash>`: the endpoint `ip:port` is part of the hashed string."""
    return ENDPOINT_CHAIN_PREFIX + _hash16(service_port_name + protocol.lower() + endpoint)


def probability(remaining: int) -> str:
    """1/n with ten decimals, kube-proxy's `%0.10f` formatting."""
    return f"{1.0 / remaining:0.10f}"


def quote(comment: str) -> str:
    """Quote a comment the way iptables-save prints it (only when it contains spaces)."""
    if " " in comment or '"' in comment or "\t" in comment or not comment:
        return '"' + comment.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return comment


def jump_rules() -> tuple[JumpRule, ...]:
    """Entry points from the built-in chains, in the order kube-proxy installs them."""
    portals = "kubernetes service portals"
    new_only = ("-m", "conntrack", "--ctstate", "NEW")
    return (
        JumpRule("nat", "PREROUTING", KUBE_SERVICES, portals),
        JumpRule("nat", "OUTPUT", KUBE_SERVICES, portals),
        JumpRule("nat", "POSTROUTING", KUBE_POSTROUTING, "kubernetes postrouting rules"),
        JumpRule("filter", "INPUT", KUBE_EXTERNAL_SERVICES,
                 "kubernetes externally-visible service portals", new_only),
        JumpRule("filter", "FORWARD", KUBE_EXTERNAL_SERVICES,
                 "kubernetes externally-visible service portals", new_only),
        JumpRule("filter", "INPUT", KUBE_SERVICES, portals, new_only),
        JumpRule("filter", "FORWARD", KUBE_SERVICES, portals, new_only),
        JumpRule("filter", "OUTPUT", KUBE_SERVICES, portals, new_only),
        JumpRule("filter", "FORWARD", KUBE_FORWARD, "kubernetes forwarding rules"),
    )


def render(snapshot: Snapshot, settings: NodeSettings) -> Ruleset:
    """Compute the desired nat and filter chains for every service port in the snapshot."""
    mark = settings.masquerade_mark
    nat: dict[str, list[str]] = {
        KUBE_SERVICES: [],
        KUBE_NODEPORTS: [],
        KUBE_POSTROUTING: [
            f"-A {KUBE_POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN",
            # Clear the mark so a packet that is re-processed (e.g. by IPsec) is not SNATed twice.
            f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {mark}",
            f"-A {KUBE_POSTROUTING} -m comment --comment "
            f"{quote('kubernetes service traffic requiring SNAT')} -j MASQUERADE"
            + (" --random-fully" if settings.masquerade_random_fully else ""),
        ],
        KUBE_MARK_MASQ: [f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {mark}"],
    }
    filt: dict[str, list[str]] = {
        KUBE_SERVICES: [],
        KUBE_EXTERNAL_SERVICES: [],
        KUBE_FORWARD: [
            f"-A {KUBE_FORWARD} -m comment --comment {quote('kubernetes forwarding rules')} "
            f"-m mark --mark {mark}/{mark} -j ACCEPT",
            f"-A {KUBE_FORWARD} -m comment --comment {quote('kubernetes forwarding conntrack rule')} "
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ],
    }

    for sp in snapshot.service_ports:
        endpoints = sp.usable_endpoints()
        if endpoints:
            _render_service_port(sp, endpoints, settings, nat)
        else:
            _render_rejects(sp, filt)

    nat[KUBE_SERVICES].append(
        f"-A {KUBE_SERVICES} -m comment --comment {quote(NODEPORTS_LAST_RULE_COMMENT)} "
        f"-m addrtype --dst-type LOCAL -j {KUBE_NODEPORTS}"
    )
    return Ruleset(
        nat=TableRules("nat", {chain: tuple(rules) for chain, rules in nat.items()}),
        filter=TableRules("filter", {chain: tuple(rules) for chain, rules in filt.items()}),
        jumps=jump_rules(),
    )


def _proto_match(protocol: str) -> str:
    proto = protocol.lower()
    return f"-m {proto} -p {proto}"


def _render_service_port(
    sp: ServicePort,
    endpoints: tuple[Endpoint, ...],
    settings: NodeSettings,
    nat: dict[str, list[str]],
) -> None:
    name = str(sp.name)
    svc_chain = service_chain_name(name, sp.protocol)
    proto = _proto_match(sp.protocol)
    cluster_ip_comment = quote(f"{name} cluster IP")
    destination = f"{proto} -d {sp.cluster_ip}/32 --dport {sp.port}"

    nat[KUBE_SERVICES].append(
        f"-A {KUBE_SERVICES} -m comment --comment {cluster_ip_comment} {destination} -j {svc_chain}"
    )
    _render_external_destinations(sp, nat)
    svc_rules: list[str] = []
    if settings.cluster_cidr:
        svc_rules.append(
            f"-A {svc_chain} -m comment --comment {cluster_ip_comment} {destination} "
            f"! -s {settings.cluster_cidr} -j {KUBE_MARK_MASQ}"
        )
    if sp.node_port is not None:
        # Node port traffic is always SNATed: the endpoint may be on another
        # node and must answer through this one (externalTrafficPolicy=Cluster).
        nodeport_match = f"-m comment --comment {quote(name)} {proto} --dport {sp.node_port}"
        nat[KUBE_NODEPORTS].append(f"-A {KUBE_NODEPORTS} {nodeport_match} -j {KUBE_MARK_MASQ}")
        nat[KUBE_NODEPORTS].append(f"-A {KUBE_NODEPORTS} {nodeport_match} -j {svc_chain}")

    sep_chains: dict[str, list[str]] = {}
    for index, ep in enumerate(endpoints):
        sep_chain = endpoint_chain_name(name, sp.protocol, ep.address)
        remaining = len(endpoints) - index
        statistic = (
            f" -m statistic --mode random --probability {probability(remaining)}"
            if remaining > 1
            else ""
        )
        svc_rules.append(
            f"-A {svc_chain} -m comment --comment {quote(f'{name} -> {ep.address}')}"
            f"{statistic} -j {sep_chain}"
        )
        sep_chains[sep_chain] = [
            # Hairpin: a pod reaching itself through the service must be SNATed,
            # or it would see its own address as the source and drop the reply.
            f"-A {sep_chain} -m comment --comment {quote(name)} -s {ep.ip}/32 -j {KUBE_MARK_MASQ}",
            f"-A {sep_chain} -m comment --comment {quote(name)} {proto} "
            f"-j DNAT --to-destination {ep.address}",
        ]
    nat[svc_chain] = svc_rules
    nat.update(sep_chains)


def _render_external_destinations(sp: ServicePort, nat: dict[str, list[str]]) -> None:
    """External IPs and load-balancer IPs -> KUBE-EXT-<hash> -> (SNAT mark) KUBE-SVC-<hash>,
    as kube-proxy's externalTrafficPolicy=Cluster path (KUBE-FW- chains come with
    loadBalancerSourceRanges, which this proxy does not enforce)."""
    if not (sp.external_ips or sp.load_balancer_ips):
        return
    name = str(sp.name)
    ext_chain = external_chain_name(name, sp.protocol)
    proto = _proto_match(sp.protocol)
    for ips, what in ((sp.external_ips, "external IP"), (sp.load_balancer_ips, "loadbalancer IP")):
        for ip in ips:
            nat[KUBE_SERVICES].append(
                f"-A {KUBE_SERVICES} -m comment --comment {quote(f'{name} {what}')} {proto} "
                f"-d {ip}/32 --dport {sp.port} -j {ext_chain}"
            )
    nat[ext_chain] = [
        f"-A {ext_chain} -m comment --comment "
        f"{quote(f'masquerade traffic for {name} external destinations')} -j {KUBE_MARK_MASQ}",
        f"-A {ext_chain} -j {service_chain_name(name, sp.protocol)}",
    ]


def _render_rejects(sp: ServicePort, filt: dict[str, list[str]]) -> None:
    name = str(sp.name)
    comment = quote(f"{name} has no endpoints")
    proto = _proto_match(sp.protocol)
    reject = "-j REJECT --reject-with icmp-port-unreachable"
    filt[KUBE_SERVICES].append(
        f"-A {KUBE_SERVICES} -m comment --comment {comment} {proto} "
        f"-d {sp.cluster_ip}/32 --dport {sp.port} {reject}"
    )
    for ip in (*sp.external_ips, *sp.load_balancer_ips):
        filt[KUBE_EXTERNAL_SERVICES].append(
            f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {comment} {proto} "
            f"-d {ip}/32 --dport {sp.port} {reject}"
        )
    if sp.node_port is not None:
        filt[KUBE_EXTERNAL_SERVICES].append(
            f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {comment} "
            f"-m addrtype --dst-type LOCAL {proto} --dport {sp.node_port} {reject}"
        )
