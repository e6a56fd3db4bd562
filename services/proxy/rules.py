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

from services.proxy.model import Endpoint, EndpointCategories, ServicePort, Snapshot, categorize_endpoints

KUBE_SERVICES: Final = "KUBE-SERVICES"
KUBE_NODEPORTS: Final = "KUBE-NODEPORTS"
KUBE_POSTROUTING: Final = "KUBE-POSTROUTING"
KUBE_MARK_MASQ: Final = "KUBE-MARK-MASQ"
KUBE_EXTERNAL_SERVICES: Final = "KUBE-EXTERNAL-SERVICES"
KUBE_FORWARD: Final = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL: Final = "KUBE-PROXY-FIREWALL"

SERVICE_CHAIN_PREFIX: Final = "KUBE-SVC-"
LOCAL_SERVICE_CHAIN_PREFIX: Final = "KUBE-SVL-"
FIREWALL_CHAIN_PREFIX: Final = "KUBE-FW-"
ENDPOINT_CHAIN_PREFIX: Final = "KUBE-SEP-"
EXTERNAL_CHAIN_PREFIX: Final = "KUBE-EXT-"
# Chains whose whole set is owned by this proxy: any existing chain with these
# prefixes that the desired ruleset does not mention is stale and gets deleted.
OWNED_PREFIXES: Final = (SERVICE_CHAIN_PREFIX, ENDPOINT_CHAIN_PREFIX, EXTERNAL_CHAIN_PREFIX,
                         LOCAL_SERVICE_CHAIN_PREFIX, FIREWALL_CHAIN_PREFIX)

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
def local_service_chain_name(service_port_name: str, protocol: str) -> str:
    """`KUBE-SVL-<hash>`: the Local policy's chain, the same hash as the service chain's."""
    return LOCAL_SERVICE_CHAIN_PREFIX + port_proto_hash(service_port_name, protocol.lower())


@functools.lru_cache(maxsize=1 << 16)
def firewall_chain_name(service_port_name: str, protocol: str) -> str:
    """`KUBE-FW-<hash>`: loadBalancerSourceRanges, the same hash as the service chain's."""
    return FIREWALL_CHAIN_PREFIX + port_proto_hash(service_port_name, protocol.lower())


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
        JumpRule("filter", "INPUT", KUBE_PROXY_FIREWALL, "kubernetes load balancer firewall", new_only),
        JumpRule("filter", "OUTPUT", KUBE_PROXY_FIREWALL, "kubernetes load balancer firewall", new_only),
        JumpRule("filter", "FORWARD", KUBE_PROXY_FIREWALL, "kubernetes load balancer firewall", new_only),
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
        KUBE_PROXY_FIREWALL: [],
    }

    for sp in snapshot.service_ports:
        cats = categorize_endpoints(sp)
        if cats.has_any:
            _render_service_port(sp, cats, settings, nat, filt)
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


@dataclass(frozen=True, slots=True)
class _Chains:
    """One service port's chain names and where each kind of traffic goes (kube-proxy's
    per-service-port variables in syncProxyRules)."""

    name: str
    svc: str  # KUBE-SVC-: Cluster policy
    svl: str  # KUBE-SVL-: Local policy
    ext: str  # KUBE-EXT-: node-port, external and load-balancer traffic
    fw: str  # KUBE-FW-: load-balancer source ranges
    internal: str  # the chain cluster-IP traffic goes to
    external_policy: str  # the chain external traffic ends in
    has_internal: bool
    has_external: bool

    @classmethod
    def of(cls, sp: ServicePort, cats: EndpointCategories) -> _Chains:
        name = str(sp.name)
        svc, svl = service_chain_name(name, sp.protocol), local_service_chain_name(name, sp.protocol)
        return cls(name, svc, svl, external_chain_name(name, sp.protocol), firewall_chain_name(name, sp.protocol),
                   svl if sp.internal_policy_local else svc, svl if sp.external_policy_local else svc,
                   not sp.internal_policy_local or bool(cats.local),
                   not sp.external_policy_local or bool(cats.local))


def _render_service_port(sp: ServicePort, cats: EndpointCategories, settings: NodeSettings,
                         nat: dict[str, list[str]], filt: dict[str, list[str]]) -> None:
    """A service port with endpoints somewhere: kube-proxy's rules for its traffic policies."""
    c = _Chains.of(sp, cats)
    proto = _proto_match(sp.protocol)
    destination = f"{proto} -d {sp.cluster_ip}/32 --dport {sp.port}"
    no_local = quote(f"{c.name} has no local endpoints")
    masquerade: list[str] = []
    if c.has_internal:
        nat[KUBE_SERVICES].append(
            f"-A {KUBE_SERVICES} -m comment --comment {quote(f'{c.name} cluster IP')} {destination} -j {c.internal}")
        if settings.cluster_cidr:
            masquerade.append(f"-A {c.internal} -m comment --comment {quote(f'{c.name} cluster IP')} {destination} "
                              f"! -s {settings.cluster_cidr} -j {KUBE_MARK_MASQ}")
    else:
        filt[KUBE_SERVICES].append(f"-A {KUBE_SERVICES} -m comment --comment {no_local} {destination} -j DROP")
    _render_external_destinations(sp, c, nat, filt)
    if sp.node_port is not None:
        nat[KUBE_NODEPORTS].append(
            f"-A {KUBE_NODEPORTS} -m comment --comment {quote(c.name)} {proto} --dport {sp.node_port} -j {c.ext}")
        if not c.has_external:
            filt[KUBE_EXTERNAL_SERVICES].append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {no_local} -m addrtype --dst-type LOCAL "
                f"{proto} --dport {sp.node_port} -j DROP")
    # the service port's own chains, in kube-proxy's order: EXT, FW, SVC, SVL, SEPs
    own: dict[str, list[str]] = {}
    if sp.externally_accessible:
        own[c.ext] = _external_chain_rules(sp, c, settings)
    if sp.load_balancer_ips and sp.load_balancer_source_ranges:
        own[c.fw] = [f"-A {c.fw} -m comment --comment {quote(f'{c.name} loadbalancer IP')} -s {cidr} -j {c.ext}"
                     for cidr in sp.load_balancer_source_ranges]
        own[c.fw].append(f"-A {c.fw} -m comment --comment "
                         f"{quote(f'other traffic to {c.name} will be dropped by KUBE-PROXY-FIREWALL')}")
    if cats.cluster and sp.uses_cluster_endpoints:
        own[c.svc] = (masquerade if c.internal == c.svc else []) + _dispatch(sp, c.svc, cats.cluster)
    if cats.local and sp.uses_local_endpoints:
        own[c.svl] = (masquerade if c.internal == c.svl else []) + _dispatch(sp, c.svl, cats.local)
    for ep in cats.reachable:
        own[endpoint_chain_name(c.name, sp.protocol, ep.address)] = _endpoint_rules(sp, c.name, ep, proto)
    nat.update(own)


def _external_chain_rules(sp: ServicePort, c: _Chains, settings: NodeSettings) -> list[str]:
    """KUBE-EXT-: masquerade (Cluster policy); with a Local policy keep the client's address,
    but send pods and the node itself to the Cluster policy (they are not external clients)."""
    if not sp.external_policy_local:
        rules = [f"-A {c.ext} -m comment --comment "
                 f"{quote(f'masquerade traffic for {c.name} external destinations')} -j {KUBE_MARK_MASQ}"]
    else:
        rules = []
        if settings.cluster_cidr:
            rules.append(f"-A {c.ext} -m comment --comment {quote(f'pod traffic for {c.name} external destinations')} "
                         f"-s {settings.cluster_cidr} -j {c.svc}")
        rules.append(f"-A {c.ext} -m comment --comment "
                     f"{quote(f'masquerade LOCAL traffic for {c.name} external destinations')} "
                     f"-m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}")
        rules.append(f"-A {c.ext} -m comment --comment "
                     f"{quote(f'route LOCAL traffic for {c.name} external destinations')} "
                     f"-m addrtype --src-type LOCAL -j {c.svc}")
    if c.has_external:
        rules.append(f"-A {c.ext} -j {c.external_policy}")
    return rules


def _dispatch(sp: ServicePort, chain: str, endpoints: tuple[Endpoint, ...]) -> list[str]:
    """Affinity checks first (kube-proxy's `recent` lists), then the random choice."""
    name = str(sp.name)
    rules = []
    for ep in endpoints if sp.affinity_seconds is not None else ():
        sep = endpoint_chain_name(name, sp.protocol, ep.address)
        rules.append(f"-A {chain} -m comment --comment {quote(f'{name} -> {ep.address}')} -m recent --name {sep} "
                     f"--mask 255.255.255.255 --rsource --rcheck --seconds {sp.affinity_seconds} --reap -j {sep}")
    for index, ep in enumerate(endpoints):
        remaining = len(endpoints) - index
        statistic = (f" -m statistic --mode random --probability {probability(remaining)}" if remaining > 1 else "")
        rules.append(f"-A {chain} -m comment --comment {quote(f'{name} -> {ep.address}')}{statistic} "
                     f"-j {endpoint_chain_name(name, sp.protocol, ep.address)}")
    return rules


def _endpoint_rules(sp: ServicePort, name: str, ep: Endpoint, proto: str) -> list[str]:
    sep = endpoint_chain_name(name, sp.protocol, ep.address)
    # Hairpin: a pod reaching itself through the service must be SNATed, or it would see
    # its own address as the source and drop the reply.
    affinity = (f" -m recent --name {sep} --mask 255.255.255.255 --rsource --set"
                if sp.affinity_seconds is not None else "")
    return [f"-A {sep} -m comment --comment {quote(name)} -s {ep.ip}/32 -j {KUBE_MARK_MASQ}",
            f"-A {sep} -m comment --comment {quote(name)}{affinity} {proto} -j DNAT --to-destination {ep.address}"]


def _render_external_destinations(sp: ServicePort, c: _Chains, nat: dict[str, list[str]],
                                  filt: dict[str, list[str]]) -> None:
    """External IPs and load-balancer IPs -> KUBE-EXT- (through KUBE-FW- with source ranges);
    with a Local policy and no endpoint here, what the EXT chain does not short-circuit is
    dropped in the filter table."""
    proto = _proto_match(sp.protocol)
    fw = bool(sp.load_balancer_source_ranges)
    no_local = quote(f"{c.name} has no local endpoints")
    for ips, what in ((sp.external_ips, "external IP"), (sp.load_balancer_ips, "loadbalancer IP")):
        for ip in ips:
            target = c.fw if fw and what == "loadbalancer IP" else c.ext
            nat[KUBE_SERVICES].append(f"-A {KUBE_SERVICES} -m comment --comment {quote(f'{c.name} {what}')} "
                                      f"{proto} -d {ip}/32 --dport {sp.port} -j {target}")
            if fw and what == "loadbalancer IP":
                filt[KUBE_PROXY_FIREWALL].append(
                    f"-A {KUBE_PROXY_FIREWALL} -m comment --comment "
                    f"{quote(f'{c.name} traffic not accepted by {c.fw}')} {proto} -d {ip}/32 --dport {sp.port} -j DROP")
            if not c.has_external:
                filt[KUBE_EXTERNAL_SERVICES].append(
                    f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {no_local} {proto} -d {ip}/32 "
                    f"--dport {sp.port} -j DROP")


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
