"""NetworkPolicy semantics as pure data: which of this node's pods are isolated, and what each
may receive (ingress) and send (egress).

kube's rules (networking.k8s.io/v1):
- a pod is isolated for ingress (egress) when some policy of its namespace selects it with that
  policy type; an isolated pod accepts (sends) only what some selecting policy's rule allows,
  and policies add up; a pod no policy selects allows everything in that direction;
- a rule allows traffic when it matches one of its peers (none listed: every source or
  destination) and one of its ports (none listed: every port);
- a peer is pods by `podSelector` (in the policy's namespace), every pod of the namespaces a
  `namespaceSelector` selects, both (the pods in those namespaces), or an `ipBlock` CIDR minus
  its `except` ranges;
- a port is a protocol (TCP by default) and a number, a range up to `endPort`, or a named port
  of the *destination* pod: the pod the policy selects for ingress, each peer pod for egress.

Pods are matched by address: a pod without an IP yet neither sends nor receives. Host-network
pods share the node's address and are not isolated here (kube leaves them to the
implementation); a pod peer selector never matches them.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubecore.api.selectors import labels_match, selector_from_label_selector

Obj = Mapping[str, Any]
PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True, order=True)
class PodRef:
    namespace: str
    name: str
    ip: str


@dataclass(frozen=True, order=True)
class PortMatch:
    """A protocol and a destination port range (None: every port of the protocol)."""

    protocol: str
    first: int | None = None
    last: int | None = None


@dataclass(frozen=True, order=True)
class Allow:
    """One way in (or out): these addresses (None: any), except these, on these ports (None:
    any)."""

    addresses: tuple[str, ...] | None
    excepted: tuple[str, ...] = ()
    ports: tuple[PortMatch, ...] | None = None


@dataclass(frozen=True)
class PodPolicy:
    """What applies to one local pod: None for a direction it is not isolated in."""

    pod: PodRef
    ingress: tuple[Allow, ...] | None
    egress: tuple[Allow, ...] | None


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def pod_ip(pod: Obj) -> str:
    status = pod.get("status") or {}
    if (pod.get("spec") or {}).get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return ""
    ip = status.get("podIP") or ""
    try:
        return ip if ipaddress.ip_address(ip).version == 4 else ""
    except ValueError:
        return ""


def _named_port(pod: Obj, name: str, protocol: str) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or ():
        for p in container.get("ports") or ():
            if p.get("name") == name and (p.get("protocol") or "TCP") == protocol:
                value = p.get("containerPort")
                return value if isinstance(value, int) else None
    return None


class Cluster:
    """The pods and namespaces policies are evaluated against."""

    def __init__(self, pods: Iterable[Obj], namespaces: Iterable[Obj]) -> None:
        self.pods = [p for p in pods if pod_ip(p)]
        self.namespace_labels = {str(_meta(n).get("name")): dict(_meta(n).get("labels") or {})
                                 for n in namespaces}

    def namespaces(self, selector: Obj | None) -> set[str]:
        reqs = selector_from_label_selector(selector)
        return {ns for ns, labels in self.namespace_labels.items() if labels_match(reqs, labels)}

    def pods_in(self, namespaces: set[str], selector: Obj | None) -> list[Obj]:
        reqs = selector_from_label_selector(selector)
        return [p for p in self.pods if _meta(p).get("namespace") in namespaces
                and labels_match(reqs, _meta(p).get("labels") or {})]


def _peer_pods(cluster: Cluster, policy_ns: str, peer: Obj) -> list[Obj] | None:
    """The pods a pod/namespace peer means (None for an ipBlock peer)."""
    if "ipBlock" in peer and peer.get("ipBlock") is not None:
        return None
    if peer.get("namespaceSelector") is not None:
        namespaces = cluster.namespaces(peer["namespaceSelector"])
    else:
        namespaces = {policy_ns}
    return cluster.pods_in(namespaces, peer.get("podSelector"))


def _ports(raw_ports: Any, destination: Obj | None) -> tuple[PortMatch, ...] | None:
    """A rule's ports against one destination pod (named ports resolved on it; a name it does
    not have matches nothing). None: every port."""
    if not raw_ports:
        return None
    out = []
    for p in raw_ports:
        protocol = p.get("protocol") or "TCP"
        if protocol not in PROTOCOLS:
            continue
        port = p.get("port")
        if port is None:
            out.append(PortMatch(protocol))
        elif isinstance(port, int):
            end = p.get("endPort")
            out.append(PortMatch(protocol, port, end if isinstance(end, int) and end >= port else port))
        elif destination is not None:
            number = _named_port(destination, str(port), protocol)
            if number is not None:
                out.append(PortMatch(protocol, number, number))
    return tuple(sorted(set(out)))


def _block(peer: Obj) -> Allow | None:
    block = peer.get("ipBlock") or {}
    try:
        cidr = str(ipaddress.ip_network(str(block.get("cidr")), strict=False))
        excepted = tuple(str(ipaddress.ip_network(e, strict=False)) for e in block.get("except") or ())
    except ValueError:
        return None
    if ipaddress.ip_network(cidr).version != 4:
        return None
    return Allow((cidr,), excepted)


def _rule_allows(cluster: Cluster, policy_ns: str, rule: Obj, peers_key: str, pod: Obj,
                 ingress: bool) -> list[Allow]:
    """One ingress or egress rule, for one local pod, as Allows."""
    raw_ports = rule.get("ports")
    peers = rule.get(peers_key)
    if not peers:  # every source / destination
        return [Allow(None, (), _ports(raw_ports, pod if ingress else None))]
    out: list[Allow] = []
    for peer in peers:
        pods = _peer_pods(cluster, policy_ns, peer)
        if pods is None:
            block = _block(peer)
            if block is not None:
                out.append(Allow(block.addresses, block.excepted, _ports(raw_ports, pod if ingress else None)))
            continue
        if ingress:
            ips = tuple(sorted({pod_ip(p) for p in pods}))
            if ips:
                out.append(Allow(ips, (), _ports(raw_ports, pod)))
            continue
        by_ports: dict[tuple[PortMatch, ...] | None, set[str]] = {}
        for peer_pod in pods:  # egress: named ports are the destination's, pod by pod
            by_ports.setdefault(_ports(raw_ports, peer_pod), set()).add(pod_ip(peer_pod))
        out += [Allow(tuple(sorted(ips)), (), ports) for ports, ips in by_ports.items()
                if ports is None or ports]
    return out


def _types(policy: Obj) -> set[str]:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return set(types)
    return {"Ingress", *(("Egress",) if spec.get("egress") else ())}


def _selects(policy: Obj, pod: Obj) -> bool:
    """The policy is in the pod's namespace and its podSelector matches the pod."""
    return ((_meta(policy).get("namespace") or "default") == (_meta(pod).get("namespace") or "default")
            and labels_match(selector_from_label_selector((policy.get("spec") or {}).get("podSelector")),
                             _meta(pod).get("labels") or {}))


def _for_pod(cluster: Cluster, policies: list[Obj], pod: Obj) -> PodPolicy | None:
    """What the policies of the pod's namespace that select it allow (None: not isolated)."""
    ns = _meta(pod).get("namespace") or "default"
    ingress: list[Allow] | None = None
    egress: list[Allow] | None = None
    for policy in policies:
        if not _selects(policy, pod):
            continue
        spec = policy.get("spec") or {}
        types = _types(policy)
        if "Ingress" in types:
            ingress = (ingress or []) + [a for rule in spec.get("ingress") or ()
                                         for a in _rule_allows(cluster, ns, rule, "from", pod, True)]
        if "Egress" in types:
            egress = (egress or []) + [a for rule in spec.get("egress") or ()
                                       for a in _rule_allows(cluster, ns, rule, "to", pod, False)]
    if ingress is None and egress is None:
        return None
    return PodPolicy(PodRef(ns, _meta(pod).get("name") or "", pod_ip(pod)),
                     None if ingress is None else tuple(ingress), None if egress is None else tuple(egress))


def pod_policies(pods: Iterable[Obj], namespaces: Iterable[Obj], policies: Iterable[Obj],
                 node_name: str) -> list[PodPolicy]:
    """What applies to each of `node_name`'s pods that some policy isolates, by pod."""
    cluster = Cluster(pods, namespaces)
    policy_list = sorted(policies, key=lambda p: (_meta(p).get("namespace") or "", _meta(p).get("name") or ""))
    out = []
    for pod in sorted(cluster.pods, key=lambda p: (_meta(p).get("namespace") or "", _meta(p).get("name") or "")):
        if (pod.get("spec") or {}).get("nodeName") == node_name:
            pp = _for_pod(cluster, policy_list, pod)
            if pp is not None:
                out.append(pp)
    return out
