"""The node's NetworkPolicy rules as one `nft -f` transaction (pure: same policies, same bytes).

One table of our own, `ip minicluster-netpol`, replaced whole in one transaction (so a packet
sees the old rules or the new, never half):

    chain forward   (filter hook forward priority 0: after kube-proxy's DNAT, so a packet to a
                     Service is judged by the pod it was sent to, as kube expects)
        ct state established,related accept      replies and ongoing connections pass
        ip daddr vmap { <isolated pod> : jump ingress-<pod>, ... }
        ip saddr vmap { <isolated pod> : jump egress-<pod>, ... }
    chain ingress-<pod>   one rule per allowed (sources, ports) ... return; then drop
    chain egress-<pod>    one rule per allowed (destinations, ports) ... accept; then drop

Pod traffic crosses the forward hook of the node it leaves and of the node it enters (ptp
routes every pod's traffic through its node), so each node enforces ingress and egress for its
own pods only. Traffic from the node itself (probes, the node agent) goes out through the
output hook and is not filtered, as kube-router and Calico allow it.
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

from services.netpol.model import Allow, PodPolicy, PortMatch

FAMILY = "ip"
TABLE = "minicluster-netpol"
TABLE_REF = f"{FAMILY} {TABLE}"


def chain_name(direction: str, namespace: str, name: str) -> str:
    """`ingress-HASH-ns/name`: a hash keeps it unique when long names are cut."""
    text = f"{namespace}/{name}"
    digest = base64.b32encode(hashlib.sha256(text.encode()).digest()[:5]).decode()
    return f"{direction}-{digest}-{text}"[:200]


def _set(values: Iterable[str]) -> str:
    return "{ " + ", ".join(values) + " }"


def _port_matches(ports: tuple[PortMatch, ...] | None) -> list[str]:
    if ports is None:
        return [""]
    out = []
    for p in ports:
        proto = p.protocol.lower()
        if p.first is None:
            out.append(f"meta l4proto {proto}")
        elif p.last is not None and p.last != p.first:
            out.append(f"meta l4proto {proto} th dport {p.first}-{p.last}")
        else:
            out.append(f"meta l4proto {proto} th dport {p.first}")
    return out


def allow_rules(allow: Allow, field: str, verdict: str) -> list[str]:
    """`field` is saddr (ingress: who may send) or daddr (egress: where to)."""
    addr = ""
    if allow.addresses is not None:
        addr = f"ip {field} {_set(allow.addresses)}"
        if allow.excepted:
            addr += f" ip {field} != {_set(allow.excepted)}"
    return [" ".join(part for part in (addr, port, verdict) if part) for port in _port_matches(allow.ports)]


def render(policies: Iterable[PodPolicy]) -> str:
    """The whole table (an empty one when no pod is isolated), replacing whatever was there."""
    chains: list[str] = []
    ingress_map, egress_map = [], []
    for pp in policies:
        if pp.ingress is not None:
            name = chain_name("ingress", pp.pod.namespace, pp.pod.name)
            rules = [r for a in pp.ingress for r in allow_rules(a, "saddr", "return")] + ["drop"]
            chains.append(_chain(name, rules))
            ingress_map.append(f"{pp.pod.ip} : jump {name}")
        if pp.egress is not None:
            name = chain_name("egress", pp.pod.namespace, pp.pod.name)
            rules = [r for a in pp.egress for r in allow_rules(a, "daddr", "accept")] + ["drop"]
            chains.append(_chain(name, rules))
            egress_map.append(f"{pp.pod.ip} : jump {name}")
    forward = ["type filter hook forward priority 0; policy accept;", "ct state established,related accept"]
    if ingress_map:
        forward.append(f"ip daddr vmap {_set(ingress_map)}")
    if egress_map:
        forward.append(f"ip saddr vmap {_set(egress_map)}")
    body = "\n".join([_chain("forward", forward), *chains])
    return (f"add table {TABLE_REF}\ndelete table {TABLE_REF}\n"
            f"table {TABLE_REF} {{\n{body}\n}}\n")


def _chain(name: str, rules: list[str]) -> str:
    inner = "\n".join(f"\t\t{r}" for r in rules)
    return f"\tchain {name} {{\n{inner}\n\t}}"
