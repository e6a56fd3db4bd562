"""What each resource claims from the ranges: a Service its ClusterIP and NodePorts,
a Node its pod CIDR. Pure bookkeeping; `storage` puts the claims into the same
etcd transaction as the object."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubecore.api.errors import Cause, invalid
from kubecore.api.types import Obj
from services.apiserver.storage import etcd as E
from services.apiserver.storage.allocator import IPRange, RangeAllocator, SubnetRange


@dataclass
class Claim:
    allocator: RangeAllocator
    value: int
    picked: bool  # chosen by us (retry on conflict) or asked for by the user (422 on conflict)
    field: str
    shown: str  # the value as the user sees it (an IP, a port)
    undo: Callable[[], None] | None = None  # puts back what the object held before the pick


def fill(holder: Obj, key: str, value: Any) -> Callable[[], None]:
    """Write a picked value into the object; the returned function undoes it, so a create
    that lost its pick retries from the object as the user sent it."""
    missing = key not in holder
    before = holder.get(key)
    holder[key] = value

    def undo() -> None:
        if missing:
            holder.pop(key, None)
        else:
            holder[key] = before
    return undo


@dataclass
class Plan:
    claims: list[Claim] = field(default_factory=list)
    releases: list[tuple[RangeAllocator, int]] = field(default_factory=list)

    def etcd_ops(self, owner: str) -> tuple[list[E.Compare], list[E.Op], dict[str, bytes]]:
        """The claims' compares and puts, the releases' deletes, and counter hints."""
        compares: list[E.Compare] = []
        ops: list[E.Op] = []
        hints: dict[str, bytes] = {}
        by_alloc: dict[int, list[Claim]] = {}
        for c in self.claims:
            by_alloc.setdefault(id(c.allocator), []).append(c)
        for claims in by_alloc.values():
            alloc = claims[0].allocator
            cmp, put, hint = alloc.claim_ops([c.value for c in claims], owner,
                                             [c.value for c in claims if c.picked])
            compares += cmp
            ops += put
            hints.update(hint)
        for alloc, value in self.releases:
            ops += alloc.release_ops([value])
        return compares, ops, hints

    def undo(self) -> None:
        for c in self.claims:
            if c.undo is not None:
                c.undo()


class NoAllocations:
    async def on_create(self, obj: Obj, kind: str, name: str) -> Plan:
        return Plan()

    async def on_update(self, new: Obj, old: Obj, kind: str, name: str) -> Plan:
        return Plan()

    def on_delete(self, old: Obj) -> Plan:
        return Plan()


class ServiceAllocations:
    def __init__(self, etcd: E.Etcd, ips: IPRange, node_ports: RangeAllocator) -> None:
        self.etcd = etcd
        self.ips = ips
        self.node_ports = node_ports

    async def _pick(self, alloc: RangeAllocator) -> int:
        return await alloc.pick(self.etcd)

    async def on_create(self, obj: Obj, kind: str, name: str) -> Plan:
        spec = obj.setdefault("spec", {})
        plan = Plan()
        ip = spec.get("clusterIP") or ""
        if ip != "None":
            if ip:
                if not self.ips.contains(ip):
                    raise invalid(kind, name, [Cause(
                        "spec.clusterIP", f'Invalid value: "{ip}": provided IP is not in the valid '
                        f"range. The range of valid IPs is {self.ips.network}")])
                plan.claims.append(Claim(self.ips.alloc, self.ips.to_int(ip), False,
                                         "spec.clusterIP", ip))
            else:
                value = await self._pick(self.ips.alloc)
                ip = self.ips.to_ip(value)
                plan.claims.append(Claim(self.ips.alloc, value, True, "spec.clusterIP", ip,
                                         fill(spec, "clusterIP", ip)))
        spec["clusterIPs"] = [ip]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec.get("type") == "NodePort":
            await self._node_port_claims(spec, set(), plan, kind, name)
        return plan

    async def _node_port_claims(self, spec: Obj, keep: set[int], plan: Plan,
                                kind: str, name: str) -> None:
        seen: set[int] = set()
        for i, port in enumerate(spec.get("ports") or []):
            np = port.get("nodePort")
            path = f"spec.ports[{i}].nodePort"
            if np:
                if not isinstance(np, int) or not self.node_ports.contains(np):
                    raise invalid(kind, name, [Cause(path, f"Invalid value: {np}: provided port is "
                                  f"not in the valid range. The range of valid ports is "
                                  f"{self.node_ports.first}-{self.node_ports.last}")])
                if np in seen:
                    raise invalid(kind, name, [Cause(path, f"Duplicate value: {np}",
                                                     "FieldValueDuplicate")])
                seen.add(np)
                if np not in keep:
                    plan.claims.append(Claim(self.node_ports, np, False, path, str(np)))
            else:
                value = await self._pick(self.node_ports)
                seen.add(value)
                plan.claims.append(Claim(self.node_ports, value, True, path, str(value),
                                         fill(port, "nodePort", value)))
        for old in keep - seen:
            plan.releases.append((self.node_ports, old))

    async def on_update(self, new: Obj, old: Obj, kind: str, name: str) -> Plan:
        plan = Plan()
        nspec = new.setdefault("spec", {})
        ospec = old.get("spec") or {}
        nspec.setdefault("clusterIPs", [nspec.get("clusterIP")] if nspec.get("clusterIP") else [])
        nspec.setdefault("ipFamilies", ospec.get("ipFamilies", ["IPv4"]))
        nspec.setdefault("ipFamilyPolicy", ospec.get("ipFamilyPolicy", "SingleStack"))
        old_ports = {p.get("nodePort") for p in ospec.get("ports") or []
                     if ospec.get("type") == "NodePort" and p.get("nodePort")}
        if nspec.get("type") == "NodePort":
            await self._node_port_claims(nspec, old_ports, plan, kind, name)
        else:
            for p in nspec.get("ports") or []:
                p.pop("nodePort", None)
            plan.releases += [(self.node_ports, v) for v in old_ports]
        return plan

    def on_delete(self, old: Obj) -> Plan:
        plan = Plan()
        spec = old.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        if ip and ip != "None" and self.ips.contains(ip):
            plan.releases.append((self.ips.alloc, self.ips.to_int(ip)))
        if spec.get("type") == "NodePort":
            for p in spec.get("ports") or []:
                if p.get("nodePort"):
                    plan.releases.append((self.node_ports, p["nodePort"]))
        return plan


class NodeAllocations:
    """Each Node gets a pod range (spec.podCIDR) once, when it is created without one."""

    def __init__(self, etcd: E.Etcd, subnets: SubnetRange) -> None:
        self.etcd = etcd
        self.subnets = subnets

    async def on_create(self, obj: Obj, kind: str, name: str) -> Plan:
        spec = obj.setdefault("spec", {})
        plan = Plan()
        cidr = spec.get("podCIDR")
        if cidr:
            index = self.subnets.index_of(cidr)
            if index is not None:  # a range outside ours is the user's business
                plan.claims.append(Claim(self.subnets.alloc, index, False, "spec.podCIDR", cidr))
        else:
            index = await self.subnets.alloc.pick(self.etcd)
            cidr = self.subnets.to_cidr(index)
            plan.claims.append(Claim(self.subnets.alloc, index, True, "spec.podCIDR", cidr,
                                     fill(spec, "podCIDR", cidr)))
        spec["podCIDRs"] = [cidr]
        return plan

    async def on_update(self, new: Obj, old: Obj, kind: str, name: str) -> Plan:
        nspec = new.setdefault("spec", {})
        ocidr = (old.get("spec") or {}).get("podCIDR")
        if ocidr and not nspec.get("podCIDR"):
            nspec["podCIDR"] = ocidr
            nspec["podCIDRs"] = [ocidr]
        return Plan()

    def on_delete(self, old: Obj) -> Plan:
        cidr = (old.get("spec") or {}).get("podCIDR")
        index = self.subnets.index_of(cidr) if cidr else None
        return Plan(releases=[(self.subnets.alloc, index)] if index is not None else [])


__all__ = ["Claim", "Plan", "NoAllocations", "ServiceAllocations", "NodeAllocations"]
