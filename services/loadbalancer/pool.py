"""The address pool and the decisions of the load-balancer controller, as pure functions.

A decision reads only the Service and the addresses other Services hold, so it can be
tested as a table; the controller keeps the holdings (`Assignments`) and writes the status.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kubecore.api.types import Obj

# MetalLB's annotations for asking an address (the newer name first); kube's own field,
# spec.loadBalancerIP, is deprecated in their favour but still read.
IP_ANNOTATIONS = ("metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs")


class PoolError(ValueError):
    pass


@dataclass(frozen=True)
class Pool:
    """Addresses first..last, inclusive (IPv4)."""

    first: ipaddress.IPv4Address
    last: ipaddress.IPv4Address

    def __contains__(self, ip: object) -> bool:
        try:
            addr = ipaddress.IPv4Address(str(ip))
        except ValueError:
            return False
        return self.first <= addr <= self.last

    def __iter__(self) -> Iterator[str]:
        for value in range(int(self.first), int(self.last) + 1):
            yield str(ipaddress.IPv4Address(value))

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


def parse_pool(text: str) -> Pool:
    """`10.250.0.200-10.250.0.250`, or a CIDR (its host addresses)."""
    try:
        if "-" in text:
            a, b = (ipaddress.IPv4Address(part.strip()) for part in text.split("-", 1))
        else:
            net = ipaddress.IPv4Network(text.strip(), strict=True)
            hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
            a, b = hosts[0], hosts[-1]
    except ValueError as exc:
        raise PoolError(f"not an address range or CIDR: {text!r}") from exc
    if a > b:
        raise PoolError(f"empty range: {text!r}")
    return Pool(a, b)


def service_key(svc: Obj) -> str:
    meta = svc.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def is_ours(svc: Obj, lb_class: str | None) -> bool:
    """A LoadBalancer Service of our class (None: those without a class)."""
    spec = svc.get("spec") or {}
    return bool(spec.get("type") == "LoadBalancer" and spec.get("loadBalancerClass") == lb_class)


def requested_ip(svc: Obj) -> str | None:
    """The address the Service asks for: the annotation (its first entry), else spec.loadBalancerIP."""
    annotations = (svc.get("metadata") or {}).get("annotations") or {}
    for name in IP_ANNOTATIONS:
        value = annotations.get(name)
        if isinstance(value, str) and value.strip():
            return value.split(",")[0].strip()
    asked = (svc.get("spec") or {}).get("loadBalancerIP")
    return asked if isinstance(asked, str) and asked else None


def ingress_ips(svc: Obj) -> list[str]:
    lb = ((svc.get("status") or {}).get("loadBalancer")) or {}
    return [i["ip"] for i in lb.get("ingress") or [] if isinstance(i, dict) and isinstance(i.get("ip"), str)]


@dataclass(frozen=True)
class Decision:
    ip: str | None  # the address the Service should hold; None: none
    problem: str = ""  # why a Service that wants one gets none (an Event's message)


def decide(svc: Obj, pool: Pool, taken: set[str], lb_class: str | None) -> Decision:
    """The address `svc` should hold, given what the other Services hold (`taken`)."""
    if not is_ours(svc, lb_class):
        return Decision(None)
    asked = requested_ip(svc)
    if asked is not None:
        if asked not in pool:
            return Decision(None, f"requested address {asked} is not in the pool {pool}")
        if asked in taken:
            return Decision(None, f"requested address {asked} is held by another Service")
        return Decision(asked)
    for held in ingress_ips(svc):
        if held in pool and held not in taken:
            return Decision(held)
    for ip in pool:
        if ip not in taken:
            return Decision(ip)
    return Decision(None, f"no free address in the pool {pool}")


def status_for(svc: Obj, ip: str | None) -> dict[str, Any] | None:
    """The status to write so that the Service holds `ip` (kube 1.30's ipMode: VIP), or
    None when it holds it already."""
    want: dict[str, Any] = {"ingress": [{"ip": ip, "ipMode": "VIP"}]} if ip else {}
    status = svc.get("status") if isinstance(svc.get("status"), dict) else {}
    current = (status or {}).get("loadBalancer") or {}
    if current == want:
        return None
    return {**(status or {}), "loadBalancer": want}


def recover(services: Iterable[Obj], pool: Pool, lb_class: str | None) -> dict[str, str]:
    """Who holds what, from the Services' status (on start): each of our Services keeps a
    pool address it shows, the first by name where two show the same one."""
    held: dict[str, str] = {}
    owners: set[str] = set()
    for svc in sorted(services, key=service_key):
        if not is_ours(svc, lb_class):
            continue
        for ip in ingress_ips(svc):
            if ip in pool and ip not in owners:
                held[service_key(svc)] = ip
                owners.add(ip)
                break
    return held
