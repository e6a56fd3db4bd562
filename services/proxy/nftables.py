"""The nftables mode's rules, rendered from service ports as `nft -f` text.

Pure: no I/O, no clock. The layout is kube-proxy's nftables proxier (KEP-3866), in one
table of our own, `ip kube-proxy`, which nothing else touches:

- verdict maps do the per-packet work in O(1): `service-ips` (cluster, external and
  load-balancer IP . protocol . port -> the service's chain), `service-nodeports`
  (protocol . port), `no-endpoint-services` / `no-endpoint-nodeports` (-> reject or drop),
  `firewall-ips` (load-balancer source ranges), and the `cluster-ips` set, whose other
  ports are rejected and whose unallocated neighbours in the service CIDR are dropped;
- per service port: `service-<hash>-<ns>/<name>/<proto>/<port>` (Cluster policy) and
  `local-...` (Local policy), each choosing an endpoint at random with `numgen` (a cascade
  of rules rather than kube-proxy's one anonymous vmap: see `_dispatch`); `external-...`
  for node-port, external and load-balancer traffic; one `endpoint-<hash>-...__<ip>/<port>`
  chain per endpoint (hairpin mark, affinity, DNAT);
  `affinity-...` sets with a timeout for sessionAffinity ClientIP; `firewall-...` chains;
- base chains hooked at kube-proxy's priorities: filter ones before DNAT (they look at the
  service address), nat prerouting/output at DNAT, postrouting at SNAT.

A `ServiceRules` is everything one service port owns: its chains with their rules, its map
and set elements, its affinity sets. `Transaction` collects the statements of one `nft -f`
run in the order the kernel needs them (chains exist before anything jumps to them; a set
is deleted only after the rules using it are flushed), so each sync is one atomic step.
"""
from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from services.proxy.model import Endpoint, ServicePort, categorize_endpoints

FAMILY: Final = "ip"
TABLE: Final = "kube-proxy"
TABLE_REF: Final = f"{FAMILY} {TABLE}"

# fixed chains
SERVICES: Final = "services"
MASQUERADING: Final = "masquerading"
MARK_MASQ: Final = "mark-for-masquerade"
CLUSTER_IPS_CHECK: Final = "cluster-ips-check"
FIREWALL_CHECK: Final = "firewall-check"
SERVICE_ENDPOINTS_CHECK: Final = "service-endpoints-check"
NODEPORT_ENDPOINTS_CHECK: Final = "nodeport-endpoints-check"
REJECT_CHAIN: Final = "reject-chain"

# sets and maps
CLUSTER_IPS: Final = "cluster-ips"
NODEPORT_IPS: Final = "nodeport-ips"
SERVICE_IPS: Final = "service-ips"
SERVICE_NODEPORTS: Final = "service-nodeports"
NO_ENDPOINT_SERVICES: Final = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS: Final = "no-endpoint-nodeports"
FIREWALL_IPS: Final = "firewall-ips"

# the containers whose elements belong to service ports, and what each one is
ADDR_PROTO_PORT: Final = "ipv4_addr . inet_proto . inet_service : verdict"
PROTO_PORT: Final = "inet_proto . inet_service : verdict"
CONTAINERS: Final[Mapping[str, tuple[str, str, str]]] = {
    # name: (set or map, type, comment)
    CLUSTER_IPS: ("set", "ipv4_addr", "Active ClusterIPs"),
    FIREWALL_IPS: ("map", ADDR_PROTO_PORT, "destinations that are subject to LoadBalancerSourceRanges"),
    NO_ENDPOINT_NODEPORTS: ("map", PROTO_PORT,
                            "vmap to drop or reject packets to service nodeports with no endpoints"),
    NO_ENDPOINT_SERVICES: ("map", ADDR_PROTO_PORT,
                           "vmap to drop or reject packets to services with no endpoints"),
    SERVICE_IPS: ("map", ADDR_PROTO_PORT, "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
    SERVICE_NODEPORTS: ("map", PROTO_PORT, "NodePort traffic"),
}

# (name, type, hook, priority): kube-proxy's nftablesBaseChains, whose priorities are named
# relative to dstnat (-100) and srcnat (100); written as numbers, which every nft accepts
# for every hook (nft 1.0.6 takes "dstnat" only in prerouting)
BASE_CHAINS: Final = (
    ("filter-prerouting", "filter", "prerouting", -110),
    ("filter-input", "filter", "input", -110),
    ("filter-forward", "filter", "forward", -110),
    ("filter-output", "filter", "output", -110),
    ("filter-output-post-dnat", "filter", "output", -90),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
)
# (chain, from base chain, extra match): kube-proxy's nftablesJumpChains
JUMP_CHAINS: Final = (
    (NODEPORT_ENDPOINTS_CHECK, "filter-input", "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, "filter-input", "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, "filter-forward", "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, "filter-output", "ct state new"),
    (FIREWALL_CHECK, "filter-prerouting", "ct state new"),
    (FIREWALL_CHECK, "filter-output", "ct state new"),
    (SERVICES, "nat-output", ""),
    (SERVICES, "nat-prerouting", ""),
    (MASQUERADING, "nat-postrouting", ""),
    (CLUSTER_IPS_CHECK, "filter-forward", "ct state new"),
    (CLUSTER_IPS_CHECK, "filter-output-post-dnat", "ct state new"),
)
NO_LOCALHOST: Final = "ip daddr != 127.0.0.0/8"


@dataclass(frozen=True, slots=True)
class NftSettings:
    """Per-node inputs of the renderer that do not come from the API."""

    node_name: str
    cluster_cidr: str | None  # pod traffic is "local"; other sources to a cluster IP are masqueraded
    service_cidrs: tuple[str, ...] = ()  # traffic to an unallocated cluster IP here is dropped
    masquerade_mark: str = "0x4000"


def hash_and_truncate(name: str) -> str:
    """kube-proxy's hashAndTruncate: 8 base32 characters of sha256(name), a dash, the name
    (the 112-character limit is never reached by Kubernetes names and IPv4 endpoints)."""
    return base64.b32encode(hashlib.sha256(name.encode()).digest()[:5]).decode() + "-" + name


@functools.lru_cache(maxsize=1 << 16)
def chain_base(service_port_name: str, protocol: str) -> str:
    """`HASH-namespace/name/proto/port`, the base of a service port's chain names."""
    namespace_name, _, port = service_port_name.partition(":")
    return hash_and_truncate(f"{namespace_name}/{protocol.lower()}/{port}")


@functools.lru_cache(maxsize=1 << 18)
def endpoint_base(service_port_name: str, protocol: str, ip: str, port: int) -> str:
    """`HASH-namespace/name/proto/port__ip/port`, the base of an endpoint's chain and set."""
    namespace_name, _, port_name = service_port_name.partition(":")
    return hash_and_truncate(f"{namespace_name}/{protocol.lower()}/{port_name}__{ip}/{port}")


def service_chain(sp: ServicePort) -> str:
    return "service-" + chain_base(str(sp.name), sp.protocol)


def local_chain(sp: ServicePort) -> str:
    return "local-" + chain_base(str(sp.name), sp.protocol)


def external_chain(sp: ServicePort) -> str:
    return "external-" + chain_base(str(sp.name), sp.protocol)


def firewall_chain(sp: ServicePort) -> str:
    return "firewall-" + chain_base(str(sp.name), sp.protocol)


def endpoint_chain(sp: ServicePort, ep: Endpoint) -> str:
    return "endpoint-" + endpoint_base(str(sp.name), sp.protocol, ep.ip, ep.port)


def affinity_set(sp: ServicePort, ep: Endpoint) -> str:
    return "affinity-" + endpoint_base(str(sp.name), sp.protocol, ep.ip, ep.port)


def is_service_chain(name: str) -> bool:
    """Chains named after a service port or endpoint carry a '/'; the fixed ones never do."""
    return "/" in name


def is_affinity_set(name: str) -> bool:
    return name.startswith("affinity-")


@dataclass(frozen=True, slots=True, order=True)
class Element:
    """One element of a set (`value` None) or verdict map, as nft writes it."""

    container: str
    key: str
    value: str | None = None
    comment: str | None = None

    def text(self) -> str:
        comment = f' comment "{self.comment}"' if self.comment else ""
        value = f" : {self.value}" if self.value is not None else ""
        return f"{self.key}{comment}{value}"


@dataclass(frozen=True, slots=True)
class ServiceRules:
    """Everything one service port owns in the table."""

    chains: Mapping[str, tuple[str, ...]]  # chain -> rule bodies, in order
    elements: tuple[Element, ...]
    affinity_sets: Mapping[str, int]  # set -> timeout in seconds


@dataclass(frozen=True, slots=True)
class _Policy:
    """Where one service port's traffic goes (kube-proxy's per-service-port variables)."""

    internal_chain: str
    has_internal: bool  # cluster-IP traffic has endpoints to go to
    external_policy_chain: str
    has_external: bool  # external traffic has endpoints to go to
    internal_verdict: str  # for cluster-IP traffic without endpoints
    external_verdict: str


def _policy(sp: ServicePort, has_any: bool, has_local: bool) -> _Policy:
    # no endpoints anywhere: reject; only none on this node for a Local policy: drop
    verdict = f"goto {REJECT_CHAIN}" if not has_any else "drop"
    return _Policy(
        internal_chain=local_chain(sp) if sp.internal_policy_local else service_chain(sp),
        has_internal=has_any and (has_local or not sp.internal_policy_local),
        external_policy_chain=local_chain(sp) if sp.external_policy_local else service_chain(sp),
        has_external=has_any and (has_local or not sp.external_policy_local),
        internal_verdict=verdict,
        external_verdict=verdict,
    )


def render_service_port(sp: ServicePort, settings: NftSettings) -> ServiceRules:
    """The chains, elements and affinity sets of one service port (kube-proxy's
    syncProxyRules loop body for one service port)."""
    cats = categorize_endpoints(sp)
    proto = sp.protocol.lower()
    policy = _policy(sp, cats.has_any, bool(cats.local))
    chains: dict[str, tuple[str, ...]] = {}
    if sp.load_balancer_ips and sp.load_balancer_source_ranges:
        chains[firewall_chain(sp)] = (f"ip saddr != {{ {', '.join(sp.load_balancer_source_ranges)} }} drop",)
    if policy.has_internal:
        chains[policy.internal_chain] = _masquerade_off_cluster(sp, proto, settings)
    if cats.has_any and sp.externally_accessible:
        chains[external_chain(sp)] = _external_rules(sp, policy, settings)
    if cats.cluster and sp.uses_cluster_endpoints:
        chains[service_chain(sp)] = chains.get(service_chain(sp), ()) + _dispatch(sp, cats.cluster)
    if cats.local and sp.uses_local_endpoints:
        chains[local_chain(sp)] = chains.get(local_chain(sp), ()) + _dispatch(sp, cats.local)
    for ep in cats.reachable:
        chains[endpoint_chain(sp, ep)] = _endpoint_rules(sp, ep, proto)
    affinity: dict[str, int] = {}
    if sp.affinity_seconds is not None:
        affinity = {affinity_set(sp, ep): sp.affinity_seconds for ep in cats.reachable}
    return ServiceRules(chains, _elements(sp, policy, cats.has_any, proto), affinity)


def _elements(sp: ServicePort, policy: _Policy, has_any: bool, proto: str) -> tuple[Element, ...]:
    """The service port's entries in the dispatch, no-endpoint and firewall maps."""
    comment = str(sp.name)
    ext = f"goto {external_chain(sp)}"

    def key(ip: str) -> str:
        return f"{ip} . {proto} . {sp.port}"

    out = [Element(CLUSTER_IPS, sp.cluster_ip)]
    if policy.has_internal:
        out.append(Element(SERVICE_IPS, key(sp.cluster_ip), f"goto {policy.internal_chain}"))
    else:
        out.append(Element(NO_ENDPOINT_SERVICES, key(sp.cluster_ip), policy.internal_verdict, comment))
    for ip in (*sp.external_ips, *sp.load_balancer_ips):
        if has_any:
            out.append(Element(SERVICE_IPS, key(ip), ext))
        if not policy.has_external:
            out.append(Element(NO_ENDPOINT_SERVICES, key(ip), policy.external_verdict, comment))
    if sp.load_balancer_ips and sp.load_balancer_source_ranges:
        out.extend(Element(FIREWALL_IPS, key(ip), f"goto {firewall_chain(sp)}") for ip in sp.load_balancer_ips)
    if sp.node_port is not None:
        if has_any:
            out.append(Element(SERVICE_NODEPORTS, f"{proto} . {sp.node_port}", ext))
        if not policy.has_external:
            out.append(Element(NO_ENDPOINT_NODEPORTS, f"{proto} . {sp.node_port}", policy.external_verdict,
                               comment))
    return tuple(out)


def _masquerade_off_cluster(sp: ServicePort, proto: str, settings: NftSettings) -> tuple[str, ...]:
    """Traffic to the cluster IP from outside the pod network is masqueraded (it may have
    been routed here by a static route and the reply must come back through this node)."""
    if not settings.cluster_cidr:
        return ()
    return (f"ip daddr {sp.cluster_ip} {proto} dport {sp.port} ip saddr != {settings.cluster_cidr} "
            f"jump {MARK_MASQ}",)


def _external_rules(sp: ServicePort, policy: _Policy, settings: NftSettings) -> tuple[str, ...]:
    """Node-port, external- and load-balancer-IP traffic: masquerade it when it may leave
    the node; with a Local policy keep the client's address, except for pods and the node
    itself, which are short-circuited to the Cluster policy."""
    svc_chain = service_chain(sp)
    rules: list[str] = []
    if not sp.external_policy_local:
        # the endpoint may be on another node: masquerade so the reply comes back here
        rules.append(f"jump {MARK_MASQ}")
    else:
        if settings.cluster_cidr:
            rules.append(f'ip saddr {settings.cluster_cidr} goto {svc_chain} comment "short-circuit pod traffic"')
        rules.append(f'fib saddr type local jump {MARK_MASQ} comment "masquerade local traffic"')
        rules.append(f'fib saddr type local goto {svc_chain} comment "short-circuit local traffic"')
    if policy.has_external:
        rules.append(f"goto {policy.external_policy_chain}")
    return tuple(rules)


def _dispatch(sp: ServicePort, endpoints: tuple[Endpoint, ...]) -> tuple[str, ...]:
    """Affinity lookups first, then one random choice among the endpoints.

    kube-proxy writes the choice as one `numgen random mod N vmap { 0 : goto e0, ... }`.
    Each such anonymous map is a set of its own, and Debian 12's nft (1.0.6) spends time
    quadratic in their number: 5,000 Services took 7.6 s to load that way and 2.0 s as this
    cascade, which gives each endpoint the same 1/N (1/N, then 1/(N-1) of the rest, ...,
    as kube-proxy's iptables mode does with `statistic` probabilities)."""
    rules = []
    if sp.affinity_seconds is not None:
        rules = [f"ip saddr @{affinity_set(sp, ep)} goto {endpoint_chain(sp, ep)}" for ep in endpoints]
    last = len(endpoints) - 1
    rules += [f"numgen random mod {len(endpoints) - i} 0 goto {endpoint_chain(sp, ep)}" if i < last
              else f"goto {endpoint_chain(sp, ep)}" for i, ep in enumerate(endpoints)]
    return tuple(rules)


def _endpoint_rules(sp: ServicePort, ep: Endpoint, proto: str) -> tuple[str, ...]:
    rules = [f"ip saddr {ep.ip} jump {MARK_MASQ}"]  # hairpin: a pod reaching itself
    if sp.affinity_seconds is not None:
        rules.append(f"update @{affinity_set(sp, ep)} {{ ip saddr }}")
    rules.append(f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}")
    return tuple(rules)


def base_statements(settings: NftSettings, *, recreate_base_chains: bool) -> list[str]:
    """The table, its base chains, fixed chains and rules, and the service containers
    (flushed: a full sync refills them). kube-proxy's setupNFTables for IPv4 with
    nodePortAddresses unset (every local address but localhost accepts node ports)."""
    t = TABLE_REF
    out = [f'add table {t} {{ comment "rules for kube-proxy" ; }}']
    if recreate_base_chains:
        # a base chain's hook or priority cannot be changed in place: drop and recreate once
        for name, *_ in BASE_CHAINS:
            out += [f"add chain {t} {name}", f"delete chain {t} {name}"]
    for name, type_, hook, priority in BASE_CHAINS:
        out += [f"add chain {t} {name} {{ type {type_} hook {hook} priority {priority} ; }}",
                f"flush chain {t} {name}"]
    fixed: list[str] = []
    for chain, _, _ in JUMP_CHAINS:
        if chain not in fixed:
            fixed.append(chain)
    for chain in (*fixed, MARK_MASQ):
        out += [f"add chain {t} {chain}", f"flush chain {t} {chain}"]
    for name in CONTAINERS:
        out += [container_statement(name), f"flush {CONTAINERS[name][0]} {t} {name}"]
    # node ports on every local address: no nodeport-ips set (add then delete, so it is gone)
    out += [f'add set {t} {NODEPORT_IPS} {{ type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }}',
            f"delete set {t} {NODEPORT_IPS}"]
    out += [
        f'add chain {t} {REJECT_CHAIN} {{ comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }}',
        f"flush chain {t} {REJECT_CHAIN}",
    ]
    rules: dict[str, list[str]] = {}
    for chain, base, match in JUMP_CHAINS:
        rules.setdefault(base, []).append(f"{match + ' ' if match else ''}jump {chain}")
    mark = settings.masquerade_mark
    rules[MARK_MASQ] = [f"mark set mark or {mark}"]
    rules[MASQUERADING] = [f"mark and {mark} == 0 return", f"mark set mark xor {mark}", "masquerade fully-random"]
    rules[CLUSTER_IPS_CHECK] = [f"ip daddr @{CLUSTER_IPS} reject "
                                'comment "Reject traffic to invalid ports of ClusterIPs"']
    if settings.service_cidrs:
        rules[CLUSTER_IPS_CHECK].append(f'ip daddr {{ {", ".join(settings.service_cidrs)} }} drop '
                                        'comment "Drop traffic to unallocated ClusterIPs"')
    rules[REJECT_CHAIN] = ["reject"]
    rules[SERVICE_ENDPOINTS_CHECK] = [f"ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}"]
    rules[NODEPORT_ENDPOINTS_CHECK] = [f"{NO_LOCALHOST} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"]
    rules[FIREWALL_CHECK] = [f"ip daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}"]
    rules[SERVICES] = [f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}",
                       f"fib daddr type local {NO_LOCALHOST} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"]
    out += [chain_statement(chain, chain_rules) for chain, chain_rules in rules.items()]
    return out


def chain_statement(chain: str, rules: Iterable[str]) -> str:
    """`add chain` with the chain's rules in its block.

    The same rules as `add rule` statements would make nft 1.0.6 load the name of every
    chain in the namespace before the transaction (its cache for `add rule` and `add
    element`): some 60 ms at 10,000 Services, each sync. A chain block needs only the
    table. A rule naming a set needs that set declared in the same transaction
    (`container_statement`, `Transaction.add_affinity_set`) so nft knows its type."""
    body = "".join(f"{rule} ; " for rule in rules)
    return f"add chain {TABLE_REF} {chain} {{ {body}}}" if body else f"add chain {TABLE_REF} {chain}"


def container_statement(name: str, elements: Iterable[Element] = ()) -> str:
    """`add map`/`add set` of one of the service containers, with elements if given: the
    way to add elements that, unlike `add element`, needs no chain cache (see
    `chain_statement`). Declaring an existing set again with its own definition is a no-op."""
    kind, type_, comment = CONTAINERS[name]
    listed = ", ".join(e.text() for e in elements)
    items = f" elements = {{ {listed} }} ;" if listed else ""
    return f'add {kind} {TABLE_REF} {name} {{ type {type_} ; comment "{comment}" ;{items} }}'


@dataclass
class Transaction:
    """The statements of one `nft -f` run, grouped so that they apply in a valid order:
    base setup, new chains, chain flushes, set deletions, set additions, chains' rules,
    element deletions, element additions.

    Only deletions (of elements and sets, and a full sync's base) make nft load its chain
    cache; the rest are written so that it needs none (`chain_statement`, `container_statement`)."""

    base: list[str] = field(default_factory=list)
    add_chains: list[str] = field(default_factory=list)
    flush_chains: list[str] = field(default_factory=list)
    delete_sets: list[str] = field(default_factory=list)
    add_sets: dict[str, str] = field(default_factory=dict)
    rules: dict[str, list[str]] = field(default_factory=dict)
    delete_elements: dict[str, list[Element]] = field(default_factory=dict)
    add_elements: dict[str, list[Element]] = field(default_factory=dict)

    def write_chain(self, chain: str, rules: Iterable[str], *, new: bool = True) -> None:
        """(Re)write a chain: flush it unless `new` (the kernel does not have it), add its rules."""
        if new:
            self.add_chains.append(chain)
        else:
            self.flush_chains.append(chain)
        self.rules.setdefault(chain, []).extend(rules)

    def add_affinity_set(self, name: str, timeout: int) -> None:
        """Create the set, or declare an existing one so that rules naming it can be written."""
        self.add_sets[name] = f"{name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}"

    def delete_element(self, element: Element) -> None:
        self.delete_elements.setdefault(element.container, []).append(element)

    def add_element(self, element: Element) -> None:
        self.add_elements.setdefault(element.container, []).append(element)

    def empty(self) -> bool:
        return not (self.base or self.add_chains or self.flush_chains or self.delete_sets or self.add_sets
                    or self.rules or self.delete_elements or self.add_elements)

    def text(self) -> str:
        t = TABLE_REF
        lines = list(self.base)
        # a new chain of a known kind is made by its own block (written after every chain it
        # jumps to); any other is declared first
        lines += [f"add chain {t} {chain}" for chain in self.add_chains if _rank(chain) is None]
        lines += [f"flush chain {t} {chain}" for chain in self.flush_chains]
        lines += [f"delete set {t} {name}" for name in self.delete_sets]
        lines += [f"add set {t} {spec}" for spec in self.add_sets.values()]
        blocks = sorted(self.rules.items(), key=lambda item: _rank(item[0]) or 0)
        lines += [chain_statement(chain, rules) for chain, rules in blocks if rules or chain in self.add_chains]
        for container, elements in sorted(self.delete_elements.items()):
            lines += _element_batches(container, [Element(e.container, e.key) for e in elements], delete=True)
        for container, elements in sorted(self.add_elements.items()):
            lines += _element_batches(container, elements)
        return "\n".join(lines) + "\n" if lines else ""


# Which chains a service port's chain may jump to: only to lower ranks (endpoint chains jump
# to none of them, service and local chains to endpoint chains, external chains to service and
# local chains), so writing blocks by rank makes every chain before a rule names it.
CHAIN_RANKS: Final[Mapping[str, int]] = {"endpoint": 1, "firewall": 1, "service": 2, "local": 2, "external": 3}


def _rank(chain: str) -> int | None:
    return CHAIN_RANKS.get(chain.partition("-")[0]) if is_service_chain(chain) else None


ELEMENTS_PER_STATEMENT: Final = 1000  # keeps each line short enough for nft's parser


def _element_batches(container: str, elements: list[Element], *, delete: bool = False) -> list[str]:
    out = []
    for start in range(0, len(elements), ELEMENTS_PER_STATEMENT):
        batch = elements[start:start + ELEMENTS_PER_STATEMENT]
        if delete:
            out.append(f"delete element {TABLE_REF} {container} {{ {', '.join(e.text() for e in batch)} }}")
        else:
            out.append(container_statement(container, batch))
    return out
