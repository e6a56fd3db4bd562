"""A packet's path from a pod to a destination, told step by step from the cluster's live state:
the API's objects (pods, Services, EndpointSlices, Nodes) and each node's network as its agent
reads it from the kernel (`/debug/network`: the packet filter with counters, routes, links, the
pods' veths), plus what a probe from the source pod saw (its DNS queries, the connection, the
conntrack entry, the counters after).

Pure: `trace(world, source, destination)` returns `Trace`, a list of `Step`s, each saying where it
happens, what decides it (the rule text, the route, the object) and, when the path breaks there,
why. It runs the first packet of the connection through the nat and filter tables of the nodes
it crosses (`iptables.walk`), in the kernel's order: nat PREROUTING, the routing decision,
filter FORWARD, nat POSTROUTING; on the destination's node again; then the reply, which
conntrack rewrites back.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kubecore.nettrace.iptables import Packet, ParseError, Path, Rule, Table, parse_save, walk
from kubecore.nettrace.nft import NftTable, parse_nft, walk_nft

Obj = Mapping[str, Any]
KUBE_DNS = ("kube-system", "kube-dns")
# a packet to a node port of another node: that node, then the endpoint's node, which may be the first again
MAX_NODE_HOPS = 3


class TraceError(ValueError):
    """The trace cannot start: the source or destination does not exist or does not parse."""


@dataclass
class Step:
    title: str
    where: str  # "pod default/client", "node kind-worker", "cluster DNS"
    lines: list[str] = field(default_factory=list)  # what happens, in words
    rules: list[str] = field(default_factory=list)  # the rules, routes or records behind it, verbatim
    ok: bool = True
    problem: str = ""  # why the path breaks here


@dataclass
class EndpointChoice:
    address: str  # 10.244.1.2:8080
    pod: str  # namespace/name, or "" when no pod has the address
    node: str
    probability: float
    chain: str  # its KUBE-SEP chain
    probed: bool = False  # the endpoint the probe's connection went to (conntrack)


@dataclass
class Trace:
    source: str
    destination: str
    steps: list[Step]
    endpoints: list[EndpointChoice] = field(default_factory=list)
    ok: bool = True
    summary: str = ""
    address: str = ""  # IP:port the pod itself sends to (a Service's cluster IP, a DNS answer)
    service: str = ""  # namespace/name of the Service that address belongs to, if any

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Destination:
    """What the user asked for, parsed: a Service (`svc/name:port`), a DNS name
    (`name[.ns[.svc.cluster.local]]:port`), a pod (`pod/name[:port]`) or an address (`IP:port`)."""

    kind: str  # service, dns, pod, ip
    name: str
    namespace: str
    port: str  # a number, or a Service port's name
    protocol: str = "TCP"


_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?$")


def parse_destination(text: str, namespace: str, protocol: str = "TCP") -> Destination:
    proto = protocol.upper()
    if proto not in ("TCP", "UDP", "SCTP"):
        raise TraceError(f"protocol {protocol!r}: TCP, UDP or SCTP")
    kind, _, rest = text.partition("/") if "/" in text else ("", "", text)
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if kind in ("svc", "service", "services"):
        if not host or not port:
            raise TraceError(f"{text!r}: a Service destination is svc/<name>:<port>")
        return Destination("service", host, namespace, port, proto)
    if kind in ("pod", "po", "pods"):
        if not host:
            raise TraceError(f"{text!r}: a pod destination is pod/<name>[:<port>]")
        return Destination("pod", host, namespace, port, proto)
    if kind:
        raise TraceError(f"{text!r}: the destination is svc/<name>:<port>, pod/<name>:<port>, <dns name>:<port> "
                         f"or <IP>:<port>")
    if not port:
        raise TraceError(f"{text!r}: give a port (<host>:<port>)")
    try:
        ipaddress.IPv4Address(host)
        return Destination("ip", host, namespace, port, proto)
    except ValueError:
        pass
    if not _DNS_NAME.match(host.lower()):
        raise TraceError(f"{text!r}: {host!r} is neither an IPv4 address nor a DNS name")
    return Destination("dns", host.lower(), namespace, port, proto)


@dataclass
class World:
    """The live state a trace reads. `nodes` maps a node's name to its agent's /debug/network
    answer; `probe` is the source pod's probe answer (its "dns" and "connect" parts), if any."""

    pods: Sequence[Obj]
    services: Sequence[Obj]
    slices: Sequence[Obj]
    nodes: Sequence[Obj]
    node_views: Mapping[str, Obj]
    probe: Obj | None = None
    dns: Obj | None = None  # the probe's DNS part, when a name was resolved

    def pod(self, namespace: str, name: str) -> Obj | None:
        return next((p for p in self.pods if _meta(p, "namespace") == namespace and _meta(p, "name") == name), None)

    def pod_by_ip(self, ip: str) -> Obj | None:
        return next((p for p in self.pods if (p.get("status") or {}).get("podIP") == ip
                     and not (p.get("spec") or {}).get("hostNetwork")), None)

    def service(self, namespace: str, name: str) -> Obj | None:
        return next((s for s in self.services if _meta(s, "namespace") == namespace and _meta(s, "name") == name),
                    None)

    def service_by_ip(self, ip: str) -> Obj | None:
        return next((s for s in self.services if ip in ((s.get("spec") or {}).get("clusterIPs")
                                                        or [(s.get("spec") or {}).get("clusterIP")])), None)

    def what_is(self, ip: str) -> str:
        """What the cluster knows `ip` as, in words."""
        if svc := self.service_by_ip(ip):
            return f"{ip} is the cluster IP of Service {_key(svc)}"
        if pod := self.pod_by_ip(ip):
            return f"{ip} is pod {_key(pod)}'s IP"
        if node := self.node_of_ip(ip):
            return f"{ip} is node {node}'s address (a node port there reaches its Service)"
        for svc in self.services:
            if any(i.get("ip") == ip for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get(
                    "ingress") or ()):
                return f"{ip} is the load-balancer address of Service {_key(svc)}"
            if ip in ((svc.get("spec") or {}).get("externalIPs") or ()):
                return f"{ip} is an external IP of Service {_key(svc)}"
        return f"{ip} is not a cluster IP, pod IP, node or load-balancer address this cluster knows"

    def node_of_ip(self, ip: str) -> str:
        for node in self.nodes:
            for addr in (node.get("status") or {}).get("addresses") or ():
                if addr.get("address") == ip:
                    return str(_meta(node, "name"))
        return ""


def _meta(obj: Obj, key: str) -> Any:
    return (obj.get("metadata") or {}).get(key)


def _key(obj: Obj) -> str:
    return f"{_meta(obj, 'namespace')}/{_meta(obj, 'name')}"


def lookup_route(routes: Sequence[Obj], ip: str) -> Obj | None:
    """The main table's route for `ip`: the longest prefix that holds it (unicast routes)."""
    best, best_len = None, -1
    addr = ipaddress.IPv4Address(ip)
    for route in routes:
        if route.get("type") not in (None, 1):  # 1: RTN_UNICAST
            continue
        dst = route.get("dst") or "default"
        net = ipaddress.IPv4Network("0.0.0.0/0" if dst == "default" else dst, strict=False)
        if addr in net and net.prefixlen > best_len:
            best, best_len = route, net.prefixlen
    return best


def route_text(route: Obj) -> str:
    parts = [str(route.get("dst") or "default")]
    if route.get("gateway"):
        parts += ["via", str(route["gateway"])]
    if route.get("dev"):
        parts += ["dev", str(route["dev"])]
    if route.get("scope") == 253:
        parts += ["scope", "link"]
    if route.get("src"):
        parts += ["src", str(route["src"])]
    return " ".join(parts)


def _address_on(view: Obj, iface: str) -> str:
    """The node's (first) address on `iface`, or "" when its view does not list one."""
    return next((str(a["address"]) for a in view.get("addresses") or ()
                 if a.get("dev") == iface and a.get("address")), "")


def _local_addresses(view: Obj) -> frozenset[str]:
    return frozenset(str(a["address"]) for a in view.get("addresses") or () if a.get("address"))


def _service_port(svc: Obj, port: str, protocol: str) -> Obj | None:
    for p in (svc.get("spec") or {}).get("ports") or ():
        if (str(p.get("port")) == port or p.get("name") == port) and (p.get("protocol") or "TCP") == protocol:
            return dict(p)
    return None


def _rule_line(table: str, rule: Rule, moved: Mapping[tuple[str, str], int] | None = None) -> str:
    if " " in table:  # an nftables table ("ip kube-proxy"): its chain and the rule as nft lists it
        return f"nft {table} {rule.chain}: {rule.text}"
    counters = f"[{rule.packets}:{rule.bytes}] " if rule.packets is not None else ""
    delta = (moved or {}).get((table, rule.text))
    note = f"   <- +{delta} packet{'s' if delta != 1 else ''} during the probe" if delta else ""
    return f"{counters}-t {table} {rule.text}{note}"


def counter_deltas(before: str, after: str) -> dict[tuple[str, str], int]:
    """(table, rule text) -> how many packets it counted between two `iptables-save -c`."""
    old = {(t, text): n for t, table in parse_save(before).items() for text, n in table.counters().items()}
    return {(t, text): n - old.get((t, text), 0) for t, table in parse_save(after).items()
            for text, n in table.counters().items() if n > old.get((t, text), 0)}


class _Tracer:
    def __init__(self, world: World, source: Obj, dest: Destination) -> None:
        self.world, self.source, self.dest = world, source, dest
        self.steps: list[Step] = []
        self.endpoints: list[EndpointChoice] = []
        self.address = ""
        self.service = ""
        self.probe_shown = False
        self.tables: dict[str, dict[str, Table]] = {}
        self.nft: dict[tuple[str, str], NftTable | None] = {}
        probe = world.probe or {}
        self.moved = counter_deltas(probe["before"], probe["after"]) if probe.get("before") and probe.get(
            "after") else {}
        self.conntrack = ((probe.get("connect") or {}).get("conntrack")) or None

    # ------------------------------------------------------------ helpers

    def view(self, node: str) -> Obj | None:
        return self.world.node_views.get(node)

    def node_tables(self, node: str) -> dict[str, Table]:
        """The node's tables; the source node's as the probe left them (counters included)."""
        if node not in self.tables:
            after = (self.world.probe or {}).get("after")
            source_node = (self.source.get("spec") or {}).get("nodeName")
            text = after if after and node == source_node else (self.view(node) or {}).get("iptables")
            self.tables[node] = parse_save(str(text or ""))
        return self.tables[node]

    def nft_table(self, node: str, which: str = "nftables") -> NftTable | None:
        """The node's nftables-mode proxy table ("nftables"), or its NetworkPolicy table
        ("netpol"), if it has one."""
        if (node, which) not in self.nft:
            view = self.view(node) or {}
            doc = view.get(which)
            self.nft[(node, which)] = parse_nft(doc, str(view.get(f"{which}Text") or "")) if doc else None
        return self.nft[(node, which)]

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def fail(self, step: Step, problem: str) -> Trace:
        step.ok, step.problem = False, problem
        return self.done(ok=False, summary=problem)

    def done(self, *, ok: bool, summary: str) -> Trace:
        connect = (self.world.probe or {}).get("connect")
        if connect and not self.probe_shown:  # the path broke before the end: what the kernel did
            self.add_probe(connect, self.add(Step("What the probe's connection met", f"pod {_key(self.source)}")))
        src = f"pod {_key(self.source)}"
        d = self.dest
        dst = {"service": f"svc/{d.name}:{d.port}", "pod": f"pod/{d.name}:{d.port}"}.get(d.kind, f"{d.name}:{d.port}")
        return Trace(src, dst, self.steps, self.endpoints, ok, summary, self.address, self.service)

    # ------------------------------------------------------------ the steps

    def run(self) -> Trace:
        spec, status = self.source.get("spec") or {}, self.source.get("status") or {}
        src_ip, src_node = status.get("podIP") or "", spec.get("nodeName") or ""
        first = self.add(Step(f"The packet starts in pod {_key(self.source)}", f"pod {_key(self.source)}",
                              [f"pod IP {src_ip or '(none)'} on node {src_node or '(none)'}"]))
        if not src_ip or not src_node:
            return self.fail(first, "the source pod has no IP yet (not running?)")
        view = self.view(src_node)
        if view is None:
            return self.fail(first, f"node {src_node}'s agent did not give its network view")
        veth = self.veth_of(view, src_ip)
        # hostNetwork, and the node runs no sandbox of its own for the pod's address
        host = bool(spec.get("hostNetwork")) and not veth
        if host:
            first.lines.append(f"the pod uses node {src_node}'s own network (hostNetwork): no veth, no pod address; "
                               "the packet is made by the node's own network stack, so it takes the node's OUTPUT "
                               "hooks where a pod's packet takes PREROUTING and FORWARD")
        target = self.resolve_destination()
        if isinstance(target, Trace):
            return target
        dst_ip, port = target
        self.address = f"{dst_ip}:{port}"
        packet = Packet(src=src_ip, dst=dst_ip, protocol=self.dest.protocol.lower(), dport=port,
                        in_iface=veth, local=_local_addresses(view))
        if not host and not self.leave_pod(view, src_ip, dst_ip):
            return self.done(ok=False, summary=self.steps[-1].problem)
        return self.cross_nodes(src_node, packet, from_host=host)

    def resolve_destination(self) -> tuple[str, int] | Trace:
        d, w = self.dest, self.world
        if d.kind == "ip":
            step = self.add(Step(f"Destination {d.name}:{d.port}", "the API", [w.what_is(d.name)]))
            if not d.port.isdigit():
                return self.fail(step, f"port {d.port!r} must be a number for an address")
            return d.name, int(d.port)
        if d.kind == "pod":
            pod = w.pod(d.namespace, d.name)
            step = self.add(Step(f"Destination pod {d.namespace}/{d.name}", "the API"))
            if pod is None:
                return self.fail(step, f'pod "{d.name}" not found in namespace {d.namespace}')
            ip = (pod.get("status") or {}).get("podIP")
            if not ip:
                return self.fail(step, f"pod {d.namespace}/{d.name} has no IP (not running?)")
            port = d.port or _first_port(pod)
            if not port.isdigit():
                named = _named_container_port(pod, port)
                if named is None:
                    return self.fail(step, f"pod {d.namespace}/{d.name} has no container port named {port!r}")
                port = str(named)
            step.lines.append(f"pod IP {ip}, port {port}, node {(pod.get('spec') or {}).get('nodeName')}")
            return ip, int(port)
        if d.kind == "dns":
            return self.dns_step()
        svc = w.service(d.namespace, d.name)
        step = self.add(Step(f"Destination Service {d.namespace}/{d.name}", "the API"))
        if svc is None:
            return self.fail(step, f'service "{d.name}" not found in namespace {d.namespace}')
        return self.service_address(svc, d.port, step)

    def service_address(self, svc: Obj, port: str, step: Step) -> tuple[str, int] | Trace:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            return self.fail(step, f"Service {_key(svc)} is headless (clusterIP: None): its name resolves to "
                                   f"the pods themselves; trace pod/<name> instead")
        self.service = _key(svc)
        sp = _service_port(svc, port, self.dest.protocol)
        if sp is None:
            ports = ", ".join(f"{p.get('name') or p.get('port')}/{p.get('protocol') or 'TCP'}"
                              for p in spec.get("ports") or ())
            return self.fail(step, f"Service {_key(svc)} has no {self.dest.protocol} port {port} (it has {ports})")
        step.lines.append(f"type {spec.get('type') or 'ClusterIP'}, cluster IP {ip}, port {sp['port']}/"
                          f"{sp.get('protocol') or 'TCP'} -> targetPort {sp.get('targetPort', sp['port'])}")
        return ip, int(sp["port"])

    def dns_step(self) -> tuple[str, int] | Trace:
        d, dns = self.dest, self.world.dns or {}
        step = self.add(Step(f"The pod's resolver looks up {d.name}", "cluster DNS"))
        nameserver = self.describe_resolver(step, dns.get("resolvConf") or {})
        if not dns.get("queries"):
            return self.fail(step, dns.get("error") or "no DNS answer was gathered from the pod")
        answer_ip, problem = _answers(step, dns["queries"], nameserver)
        if problem:
            return self.fail(step, problem)
        if not answer_ip:
            rcodes = [str(q.get("rcode") or "no answer") for q in dns["queries"]]
            got = (f"every name the search path tried was {rcodes[0]}" if len(set(rcodes)) == 1 else
                   "the names the search path tried got " + ", ".join(
                       f"{rc} ({rcodes.count(rc)})" for rc in dict.fromkeys(rcodes)))
            return self.fail(step, f"{d.name} does not resolve: {got}")
        svc = self.world.service_by_ip(answer_ip)
        if svc is not None:
            step.lines.append(f"the answer {answer_ip} is the cluster IP of Service {_key(svc)}")
            return self.service_address(svc, self.dest.port, step)
        pod = self.world.pod_by_ip(answer_ip)
        step.lines.append(f"the answer {answer_ip} is " + (f"pod {_key(pod)}" if pod else "outside the cluster"))
        if not self.dest.port.isdigit():
            return self.fail(step, f"port {self.dest.port!r} must be a number here")
        return answer_ip, int(self.dest.port)

    def describe_resolver(self, step: Step, conf: Obj) -> str:
        nameserver = str((conf.get("nameservers") or ["?"])[0])
        step.lines.append(f"resolv.conf: nameserver {nameserver}, search {' '.join(conf.get('search') or [])}, "
                          f"ndots:{conf.get('ndots', '?')}")
        kube_dns = self.world.service(*KUBE_DNS)
        if kube_dns is not None and nameserver == (kube_dns.get("spec") or {}).get("clusterIP"):
            step.lines.append(f"{nameserver} is Service kube-system/kube-dns: the query itself goes through "
                              "the node's nat rules like any Service traffic (UDP port 53)")
        return nameserver

    @staticmethod
    def veth_of(view: Obj, pod_ip: str) -> str:
        return next((str(p.get("hostVeth") or "") for p in view.get("pods") or () if p.get("ip") == pod_ip), "")

    def leave_pod(self, view: Obj, src_ip: str, dst_ip: str) -> bool:
        pod = next((p for p in view.get("pods") or () if p.get("ip") == src_ip), None)
        step = self.add(Step("Out of the pod through its veth", f"pod {_key(self.source)}"))
        if pod is None:
            step.ok, step.problem = False, f"node {view.get('node')} runs no sandbox with IP {src_ip}"
            return False
        route = lookup_route(pod.get("routes") or (), dst_ip)
        if route is None:
            step.ok, step.problem = False, f"the pod has no route to {dst_ip}"
            return False
        step.rules.append(f"pod route: {route_text(route)}")
        step.lines.append(f"eth0 in the pod is one end of a veth pair; the other end is {pod.get('hostVeth')} "
                          f"on node {view.get('node')}, so the packet enters the node's network there")
        return True

    def cross_nodes(self, src_node: str, packet: Packet, *, from_host: bool = False) -> Trace:
        """The packet through each node it crosses. One the node itself made (`from_host`: a
        hostNetwork source) takes nat and filter OUTPUT on its first node; a forwarded one
        nat PREROUTING and filter FORWARD."""
        node = src_node
        original_dst, original_src = f"{packet.dst}:{packet.dport}", packet.src
        for hop in range(MAX_NODE_HOPS):
            view = self.view(node) or {}
            tables = self.node_tables(node)
            made_here = from_host and hop == 0
            rewritten = self.nat_dnat(node, tables, replace(packet, local=_local_addresses(view)),
                                      hook="output" if made_here else "prerouting")
            if rewritten is None:
                return self.done(ok=False, summary=self.steps[-1].problem)
            packet = rewritten
            routed = self.routing(node, view, packet)
            if routed is None:
                return self.done(ok=False, summary=self.steps[-1].problem)
            route, local_pod = routed
            packet = replace(packet, out_iface=str(route.get("dev") or ""))
            if not self.filter_hook(node, tables, packet, hook="output" if made_here else "forward"):
                return self.done(ok=False, summary=self.steps[-1].problem)
            packet = self.nat_postrouting(node, tables, packet)
            if local_pod is not None:
                return self.arrive(local_pod, packet, original_dst, original_src)
            following = self.next_node(node, route, packet, last=hop == MAX_NODE_HOPS - 1)
            if isinstance(following, Trace):
                return following
            packet = replace(packet, in_iface="", out_iface="")
            node = following
        step = self.add(Step(f"Leaving node {node}", f"node {node}"))
        return self.fail(step, f"the packet crossed {MAX_NODE_HOPS} nodes without arriving")

    def next_node(self, node: str, route: Obj, packet: Packet, *, last: bool) -> str | Trace:
        """Where a packet routed off `node` goes: the next node whose rules the account follows,
        or the account's end."""
        if not route.get("gateway"):  # on the node network itself: a node or a host beside the nodes
            owner = self.world.node_of_ip(packet.dst)
            if not owner or owner == node or self.view(owner) is None or last:
                return self.leave_to_node_network(node, route, packet)
            # another node's own address (a node port there): its rules take over
            self.add(Step(f"Over the node network to node {owner}", f"node {node}",
                          [f"{packet.dst} is node {owner}'s own address: delivered directly on "
                           f"{route.get('dev')}, where that node's nat PREROUTING sees it"]))
            return owner
        peer = self.world.node_of_ip(str(route.get("gateway") or ""))
        if not peer or last:
            step = self.add(Step(f"Leaving node {node}", f"node {node}",
                                 [f"towards {route.get('gateway') or packet.dst} via {route.get('dev') or ''}"]))
            return self.fail(step, f"{packet.dst} is not a pod of any node this trace can see")
        if self.view(peer) is None:
            step = self.add(Step(f"Over the node network to {peer}", f"node {node}"))
            return self.fail(step, f"node {peer}'s agent did not give its network view")
        self.add(Step(f"Over the node network to node {peer}", f"node {node}",
                      [f"the packet keeps its addresses ({packet.src} -> {packet.dst}): no overlay, no NAT "
                       f"between nodes; node {peer} receives it on {route.get('dev')}"]))
        return peer

    def routing(self, node: str, view: Obj, packet: Packet) -> tuple[Obj, Obj | None] | None:
        """The node's routing decision: (the route, the local pod it leads to, if any); None
        (the step says why) when there is no route."""
        step = self.add(Step(f"Routing decision on node {node}", f"node {node}"))
        route = lookup_route(view.get("routes") or (), packet.dst)
        if route is None:
            step.ok, step.problem = False, f"node {node} has no route to {packet.dst}"
            return None
        step.rules.append(route_text(route))
        local_pod = next((p for p in view.get("pods") or () if p.get("ip") == packet.dst), None)
        if local_pod is not None:
            step.lines.append(f"{packet.dst} is pod {local_pod['namespace']}/{local_pod['name']} on this "
                              f"node: out through its veth {local_pod.get('hostVeth')}")
        elif route.get("gateway"):
            peer = self.world.node_of_ip(str(route["gateway"]))
            step.lines.append(f"{packet.dst} is in node {peer}'s pod range: to {route['gateway']}" if peer else
                              f"{packet.dst} is not in a node's pod range: towards {route['gateway']}, "
                              f"which is not a node")
        return route, local_pod

    def hook_paths(self, node: str, tables: Mapping[str, Table], table: str, hook: str, packet: Packet) -> list[Path]:
        """The packet through the node's iptables `table` at `hook`, then, unless that already
        ended it (a NAT done, a drop), through the nftables proxy table's base chains of the
        same kind: every way, most likely first."""
        ipt = tables.get(table)
        paths = walk(ipt, hook.upper(), packet) if ipt is not None else [Path((), "ACCEPT", packet)]
        nft = self.nft_table(node)
        if nft is None:
            return paths
        out: list[Path] = []
        for path in paths:
            if path.verdict in ("DROP", "REJECT") or path.nat:
                out.append(path)
                continue
            out += [replace(n, hits=path.hits + n.hits, unknown=path.unknown + n.unknown,
                            probability=path.probability * n.probability)
                    for n in walk_nft(nft, table, hook.lower(), path.packet)]
        return sorted(out, key=lambda p: -round(p.probability, 6))

    def nat_dnat(self, node: str, tables: Mapping[str, Table], packet: Packet, *,
                 hook: str = "prerouting") -> Packet | None:
        """nat PREROUTING (a packet arriving) or OUTPUT (one the node made): where a Service's
        address becomes an endpoint's."""
        step = self.add(Step(f"nat {hook.upper()} on node {node}", f"node {node}"))
        if tables.get("nat") is None and self.nft_table(node) is None:
            step.lines.append("the node has no nat table loaded: nothing rewrites the destination")
            return packet
        paths = self.hook_paths(node, tables, "nat", hook, packet)
        chosen = self.choose(paths)
        for hit in chosen.matched:
            step.rules.append(_rule_line(hit.table, hit.rule, self.moved))
        if not self.endpoints and any(p.nat.startswith("DNAT ") for p in paths):
            self.list_endpoints(paths, step)
        if chosen.nat.startswith("DNAT"):
            step.lines.append(f"{chosen.nat.replace('DNAT', 'DNAT: the destination becomes')} "
                              f"(was {packet.dst}:{packet.dport})")
            if chosen.packet.mark & 0x4000 and not packet.mark & 0x4000:
                step.lines.append(_why_masquerade(chosen, packet))
        else:
            step.lines.append("no rule rewrote the destination")
        if chosen.unknown:
            step.lines.append(f"{len(chosen.unknown)} rule(s) with matches this account does not evaluate were "
                              "skipped: " + "; ".join(r.text for r in chosen.unknown[:3]))
        if chosen.verdict in ("DROP", "REJECT"):
            step.ok, step.problem = False, f"nat {hook.upper()} on {node} ends in {chosen.verdict}"
            return None
        return chosen.packet

    def choose(self, paths: list[Path]) -> Path:
        """The path the probe's connection took (its conntrack reply source), else the likeliest."""
        if self.conntrack:
            reply = self.conntrack.get("reply") or {}
            went = f"{reply.get('src')}:{reply.get('sport')}"
            for path in paths:
                if path.nat == f"DNAT {went}":
                    return path
        return paths[0]

    def list_endpoints(self, paths: list[Path], step: Step) -> None:
        reply = (self.conntrack or {}).get("reply") or {}
        went = f"{reply.get('src')}:{reply.get('sport')}" if reply else ""
        for path in paths:
            if not path.nat.startswith("DNAT "):
                continue
            address = path.nat.split(" ", 1)[1]
            pod = self.world.pod_by_ip(address.rsplit(":", 1)[0])
            sep = next((h.rule.chain for h in path.matched if h.rule.chain.startswith(("KUBE-SEP-", "endpoint-"))),
                       "")
            self.endpoints.append(EndpointChoice(
                address, _key(pod) if pod else "", str((pod or {}).get("spec", {}).get("nodeName") or ""),
                round(path.probability, 4), sep, probed=address == went))
        n = len(self.endpoints)
        nft = any(e.chain.startswith("endpoint-") for e in self.endpoints)
        how = "nftables numgen" if nft else "iptables statistic"
        step.lines.append("one endpoint: every connection goes to it" if n == 1 else
                          f"the Service's chain picks one of {n} endpoints at random "
                          f"({how} rules: 1/{n}, 1/{n - 1}, ... so each gets 1/{n}):")
        for e in self.endpoints:
            mark = "  <- the probe's connection went here (conntrack)" if e.probed else ""
            step.lines.append(f"  {e.probability * 100:.1f}%  {e.chain} -> {e.address}  pod {e.pod or '?'} "
                              f"on {e.node or '?'}{mark}")

    def filter_hook(self, node: str, tables: Mapping[str, Table], packet: Packet, *, hook: str = "forward") -> bool:
        """filter FORWARD (a packet passing through) or OUTPUT (one the node made)."""
        step = self.add(Step(f"filter {hook.upper()} on node {node}", f"node {node}"))
        nft, policy, ipt = self.nft_table(node), self.nft_table(node, "netpol"), tables.get("filter")
        if ipt is None and nft is None and policy is None:
            step.lines.append("no filter table loaded: forwarded")
            return True
        # nftables' filter-forward runs first (priority -110), then iptables' filter and the
        # NetworkPolicy table (both at 0); the first drop or reject ends it
        path = Path((), "ACCEPT", packet)
        walks: list[Callable[[], list[Path]]] = []
        if nft is not None:
            walks.append(lambda: walk_nft(nft, "filter", hook, packet))
        if ipt is not None:
            walks.append(lambda: walk(ipt, hook.upper(), packet))
        if policy is not None:
            walks.append(lambda: walk_nft(policy, "filter", hook, packet))
        for walk_one in walks:
            first = walk_one()[0]
            path = replace(first, hits=path.hits + first.hits)
            if path.verdict != "ACCEPT":
                break
        for hit in path.matched:
            step.rules.append(_rule_line(hit.table, hit.rule, self.moved))
        if path.verdict in ("DROP", "REJECT"):
            step.ok = False
            which, why = _why_filtered(path)
            step.problem = (f"filter {hook.upper()} on node {node} ends in {path.verdict} ({which})"
                            + (f": {why}" if why else ""))
            return False
        step.lines.append(f"verdict {path.verdict}" + ("" if path.matched else " (the chain's policy)"))
        return True

    def nat_postrouting(self, node: str, tables: Mapping[str, Table], packet: Packet) -> Packet:
        step = self.add(Step(f"nat POSTROUTING on node {node}", f"node {node}"))
        if tables.get("nat") is None and self.nft_table(node) is None:
            return packet
        (path, *_) = self.hook_paths(node, tables, "nat", "postrouting", packet)
        for hit in path.matched:
            step.rules.append(_rule_line(hit.table, hit.rule, self.moved))
        if path.nat == "MASQUERADE" or path.nat.startswith("SNAT"):
            source = (path.nat.split(" ", 1)[1].split(":")[0] if path.nat.startswith("SNAT ")
                      else _address_on(self.view(node) or {}, packet.out_iface))
            step.lines.append(f"{path.nat}: the source becomes node {node}'s address"
                              + (f" {source}" if source else "") + f" on {packet.out_iface or 'the way out'}; "
                              "the reply comes back to the node")
            return replace(path.packet, src=source) if source else path.packet
        whose = "the pod's" if self.world.pod_by_ip(packet.src) is not None else "its source"
        step.lines.append(f"no source NAT: the packet keeps {whose} address {packet.src}")
        return path.packet

    def arrive(self, pod: Obj, packet: Packet, original_dst: str, original_src: str) -> Trace:
        self.add(Step(f"Into pod {pod['namespace']}/{pod['name']}", f"pod {pod['namespace']}/{pod['name']}",
                      [f"through veth {pod.get('hostVeth')} to eth0 {pod.get('ip')}, port {packet.dport}"]))
        reply = self.add(Step("The reply", "conntrack"))
        dnat = f"{packet.dst}:{packet.dport}" != original_dst
        if packet.src != original_src:
            reply.lines.append(f"the answer leaves {packet.dst}:{packet.dport} for {packet.src}, the node that "
                               f"masqueraded the packet; that node's conntrack entry rewrites it back: from "
                               f"{original_dst} to {original_src}, so the client sees the address it asked for")
        elif dnat:
            reply.lines.append(f"the answer leaves {packet.dst}:{packet.dport} for {packet.src}; the node's conntrack "
                               f"entry for this connection rewrites its source back to {original_dst}, so the "
                               "client sees the address it asked for")
        else:
            reply.lines.append("the answer goes back the same way; no address was rewritten")
        connect = (self.world.probe or {}).get("connect")
        if connect:
            self.add_probe(connect, reply)
            if not connect.get("connected"):
                return self.done(ok=False, summary=reply.problem)
        summary = f"reaches pod {pod['namespace']}/{pod['name']} at {packet.dst}:{packet.dport}"
        return self.done(ok=True, summary=summary)

    def leave_to_node_network(self, node: str, route: Obj, packet: Packet) -> Trace:
        owner = self.world.node_of_ip(packet.dst)
        what = f"node {owner}'s own address" if owner else "an address on the node network, outside the pod network"
        step = self.add(Step(f"Out of node {node} onto the node network", f"node {node}",
                             [f"{packet.dst} is {what}: delivered directly on {route.get('dev')}"]))
        connect = (self.world.probe or {}).get("connect")
        if connect:
            self.add_probe(connect, step)
            if not connect.get("connected"):
                return self.done(ok=False, summary=step.problem)
        return self.done(ok=True, summary=f"reaches {packet.dst}:{packet.dport} ({what})")

    def add_probe(self, connect: Obj, step: Step) -> None:
        self.probe_shown = True
        ct = connect.get("conntrack")
        if ct:
            o, r = ct.get("original") or {}, ct.get("reply") or {}
            step.rules.append(f"conntrack: {ct.get('protocol')} {ct.get('state') or ''} src={o.get('src')} "
                              f"dst={o.get('dst')} sport={o.get('sport')} dport={o.get('dport')} "
                              f"src={r.get('src')} dst={r.get('dst')} sport={r.get('sport')} dport={r.get('dport')}"
                              + (" [ASSURED]" if ct.get("assured") else ""))
        if connect.get("connected"):
            answer = connect.get("answer")
            step.lines.append(f"probe: connected in {connect.get('ms')} ms"
                              + (f', answered "{answer}"' if answer else ", no answer")
                              + (f" (Server: {connect['server']})" if connect.get("server") else ""))
        else:
            step.ok = False
            step.problem = f"the probe's connection failed: {connect.get('error')}"


def _answers(step: Step, queries: Sequence[Obj], nameserver: str) -> tuple[str, str]:
    """Each query the resolver sent and what came back, onto `step`; -> (the A answer, or "";
    a problem, or "")."""
    answer_ip = ""
    for q in queries:
        if q.get("error"):
            step.rules.append(f"{q['name']} A -> error: {q['error']}")
            return "", f"the DNS server {nameserver} did not answer: {q['error']}"
        records = [a for a in q.get("answers") or () if a.get("type") == "A"]
        shown = ", ".join(f"{a['name']} {a['ttl']} IN A {a['data']}" for a in records)
        step.rules.append(f"{q['name']} A -> {q.get('rcode')}{': ' + shown if shown else ''}")
        if records:
            answer_ip = str(records[-1]["data"])
    return answer_ip, ""


def _why_filtered(path: Path) -> tuple[str, str]:
    """(which rule, and why) a filter verdict dropped or rejected the packet, as far as the rules tell."""
    last = path.matched[-1].rule if path.matched else None
    no_endpoints = "the Service has no ready endpoints, so kube-proxy rejects its traffic"
    if last is None:
        return "the chain's policy", ""
    if last.comment.endswith("has no endpoints"):
        return f'"{last.comment}"', no_endpoints
    if last.chain == "reject-chain" or last.chain == "service-endpoints-check":
        return "the no-endpoint-services map", (
            no_endpoints if path.verdict == "REJECT" else
            "the Service has no endpoint on this node for its Local traffic policy, so kube-proxy drops its traffic")
    if last.chain.startswith(("ingress-", "egress-")):
        pod = last.chain.split("-", 2)[2] if last.chain.count("-") >= 2 else last.chain
        way = "receive from this source" if last.chain.startswith("ingress-") else "send to this destination"
        return "a NetworkPolicy", f"policies isolate pod {pod} and none of their rules lets it {way}"
    if last.chain == "cluster-ips-check":
        return "cluster-ips-check", ("no Service has this port at this cluster IP" if path.verdict == "REJECT"
                                     else "no Service holds this address of the service range")
    return (f'"{last.comment}"' if last.comment else "a rule"), ""


def _why_masquerade(path: Path, before: Packet) -> str:
    def marked_in(*prefixes: str) -> bool:
        return any(h.rule.chain.startswith(prefixes)
                   and (h.rule.target == "KUBE-MARK-MASQ" or "mark-for-masquerade" in h.rule.text)
                   for h in path.matched)
    if marked_in("KUBE-SEP-", "endpoint-"):
        return ("marked for masquerade (0x4000): the pod reaches itself through the Service (hairpin), "
                "so the source must be rewritten or it would drop its own reply")
    if marked_in("KUBE-EXT-", "external-"):
        return ("marked for masquerade (0x4000): traffic to a node port or an external address with "
                "externalTrafficPolicy Cluster may go to an endpoint on another node, which must answer "
                "through this one")
    return (f"marked for masquerade (0x4000): the source {before.src} is outside the cluster's pod range, "
            "so the endpoint must answer through this node")


def _first_port(pod: Obj) -> str:
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            return str(p.get("containerPort"))
    return "80"


def _named_container_port(pod: Obj, name: str) -> int | None:
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("name") == name:
                return int(p["containerPort"])
    return None


def trace(world: World, source: Obj, destination: Destination) -> Trace:
    """The account of one packet from `source` (a pod object) to `destination`."""
    tracer = _Tracer(world, source, destination)
    try:
        return tracer.run()
    except ParseError as exc:  # a node's packet filter this account cannot read
        step = tracer.add(Step("Reading the node's packet filter", "node agent"))
        return tracer.fail(step, f"the packet filter a node reported cannot be read: {exc}")
