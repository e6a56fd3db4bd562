"""What each resource claims from the ranges: a Service its ClusterIP and NodePorts,
a Node its pod CIDR. Pure bookkeeping; `storage` puts the claims into the same
etcd transaction as the object."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubecore.api import servicespec as S
from kubecore.api.errors import Cause, invalid
from kubecore.api.nodenet import NODE_ADDRESS_TYPES, NodeRanges, node_address_problem, pod_cidr_problem
from kubecore.api.types import Obj
from kubecore.api.validation.core import pod_cidrs
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
    """A Service's cluster IP, node ports and health check node port (kube's
    pkg/registry/core/service/storage/alloc.go), by what its type needs
    (`kubecore.api.servicespec`): an ExternalName Service holds nothing; NodePort and
    LoadBalancer hold node ports (a LoadBalancer with `allocateLoadBalancerNodePorts: false`
    only those asked for), on create ports with the same number (53/UDP and 53/TCP) share
    one; a LoadBalancer with `externalTrafficPolicy: Local` a health check node port. An
    update that changes the type claims what the new type needs and releases what it no
    longer does, in the Service's own transaction."""

    def __init__(self, etcd: E.Etcd, ips: IPRange, node_ports: RangeAllocator) -> None:
        self.etcd = etcd
        self.ips = ips
        self.node_ports = node_ports

    async def _pick(self, alloc: RangeAllocator) -> int:
        return await alloc.pick(self.etcd)

    async def _cluster_ip_claims(self, spec: Obj, plan: Plan, kind: str, name: str) -> None:
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

    async def on_create(self, obj: Obj, kind: str, name: str) -> Plan:
        spec = obj.setdefault("spec", {})
        plan = Plan()
        if S.needs_cluster_ip(obj):
            await self._cluster_ip_claims(spec, plan, kind, name)
        if S.can_hold_node_ports(obj):
            await self._node_port_claims(obj, set(), plan, kind, name, share=True)
        if S.needs_health_check_node_port(obj):
            await self._health_check_claim(spec, plan, kind, name)
        return plan

    def _requested(self, np: Any, path: str, kind: str, name: str) -> None:
        if not isinstance(np, int) or not self.node_ports.contains(np):
            raise invalid(kind, name, [Cause(path, f"Invalid value: {np}: provided port is "
                          f"not in the valid range. The range of valid ports is "
                          f"{self.node_ports.first}-{self.node_ports.last}")])

    async def _node_port_claims(self, obj: Obj, keep: set[int], plan: Plan, kind: str, name: str,
                                *, share: bool = False) -> None:
        """Claims for the ports' node ports (those in `keep` are held already), picks for
        the ports without one when the type allocates them, releases of `keep` no port uses
        any more. `share`: a port without a node port takes the one of an earlier port with
        the same number (kube does so on create)."""
        seen: set[int] = set()
        by_number: dict[Any, int] = {}
        allocate = S.allocates_node_ports(obj)
        for i, port in enumerate((obj.get("spec") or {}).get("ports") or []):
            np = port.get("nodePort") or (by_number.get(port.get("port")) if share else None)
            path = f"spec.ports[{i}].nodePort"
            if np:
                self._requested(np, path, kind, name)
                if np not in seen and np not in keep:
                    plan.claims.append(Claim(self.node_ports, np, False, path, str(np)))
                port["nodePort"] = np
            elif allocate:
                np = await self._pick(self.node_ports)
                plan.claims.append(Claim(self.node_ports, np, True, path, str(np),
                                         fill(port, "nodePort", np)))
            else:
                continue
            seen.add(np)
            by_number.setdefault(port.get("port"), np)
        for old in keep - seen:
            plan.releases.append((self.node_ports, old))

    async def _health_check_claim(self, spec: Obj, plan: Plan, kind: str, name: str) -> None:
        path = "spec.healthCheckNodePort"
        hc = spec.get("healthCheckNodePort")
        if hc:
            self._requested(hc, path, kind, name)
            if any(c.allocator is self.node_ports and c.value == hc for c in plan.claims):
                raise invalid(kind, name, [Cause(path, f'Invalid value: "{hc}": provided port is '
                                                 "already allocated")])
            plan.claims.append(Claim(self.node_ports, hc, False, path, str(hc)))
        else:
            value = await self._pick(self.node_ports)
            plan.claims.append(Claim(self.node_ports, value, True, path, str(value),
                                     fill(spec, "healthCheckNodePort", value)))

    async def on_update(self, new: Obj, old: Obj, kind: str, name: str) -> Plan:
        plan = Plan()
        nspec = new.setdefault("spec", {})
        ospec = old.get("spec") or {}
        if S.needs_cluster_ip(new) and not S.needs_cluster_ip(old):
            await self._cluster_ip_claims(nspec, plan, kind, name)
        elif S.needs_cluster_ip(new):
            nspec.setdefault("clusterIPs", [nspec.get("clusterIP")] if nspec.get("clusterIP") else [])
            nspec.setdefault("ipFamilies", ospec.get("ipFamilies", ["IPv4"]))
            nspec.setdefault("ipFamilyPolicy", ospec.get("ipFamilyPolicy", "SingleStack"))
        else:
            plan.releases += self._cluster_ip_releases(old)
        old_ports = set(S.node_ports(old))
        if S.can_hold_node_ports(new):
            await self._node_port_claims(new, old_ports, plan, kind, name)
        else:
            for p in nspec.get("ports") or []:
                p.pop("nodePort", None)
            plan.releases += [(self.node_ports, v) for v in old_ports]
        await self._health_check_update(new, old, plan, kind, name)
        return plan

    async def _health_check_update(self, new: Obj, old: Obj, plan: Plan, kind: str, name: str) -> None:
        needed, needs = S.needs_health_check_node_port(old), S.needs_health_check_node_port(new)
        old_hc = (old.get("spec") or {}).get("healthCheckNodePort")
        if needs and not needed:
            await self._health_check_claim(new["spec"], plan, kind, name)
        elif needed and not needs:
            if old_hc:
                plan.releases.append((self.node_ports, old_hc))
            new["spec"].pop("healthCheckNodePort", None)

    def _cluster_ip_releases(self, svc: Obj) -> list[tuple[RangeAllocator, int]]:
        ip = (svc.get("spec") or {}).get("clusterIP") or ""
        if S.needs_cluster_ip(svc) and ip and ip != "None" and self.ips.contains(ip):
            return [(self.ips.alloc, self.ips.to_int(ip))]
        return []

    def on_delete(self, old: Obj) -> Plan:
        plan = Plan(releases=self._cluster_ip_releases(old))
        plan.releases += [(self.node_ports, v) for v in S.node_ports(old)]
        hc = (old.get("spec") or {}).get("healthCheckNodePort")
        if S.needs_health_check_node_port(old) and isinstance(hc, int) and hc not in S.node_ports(old):
            plan.releases.append((self.node_ports, hc))
        return plan


class NodeAllocations:
    """A Node's pod range and addresses, against the cluster's ranges (`NodeRanges`).

    A Node created without a range gets the next free node subnet of the cluster CIDR; one
    that asks for a range (on create, or on the update that sets it from "") gets it only if
    it is a node subnet of the cluster CIDR (`nodenet.pod_cidr_problem`) that no other Node
    holds. Either way the range is claimed in the Node's own etcd transaction, so two Nodes
    never hold the same range, however their writes interleave, and the delete of the Node
    releases it. When the server knows the node network, every InternalIP/ExternalIP a write
    adds must be in it (addresses stored before are left alone, so a node's heartbeat is not
    refused for what an older server let through)."""

    def __init__(self, etcd: E.Etcd, subnets: SubnetRange, ranges: NodeRanges) -> None:
        self.etcd = etcd
        self.subnets = subnets
        self.ranges = ranges

    def _asked_claims(self, cidrs: list[Any], kind: str, name: str) -> Plan:
        plan = Plan()
        for i, cidr in enumerate(cidrs):
            path = f"spec.podCIDRs[{i}]"
            problem = pod_cidr_problem(cidr, self.ranges)
            index = self.subnets.index_of(cidr) if problem is None else None
            if index is None:
                raise invalid(kind, name, [Cause(path, f"Invalid value: {json.dumps(cidr)}: "
                                                 f"{problem or 'must be valid CIDR'}")])
            plan.claims.append(Claim(self.subnets.alloc, index, False, path, cidr))
        return plan

    def _check_addresses(self, new: Obj, old: Obj | None, kind: str, name: str) -> None:
        if self.ranges.node_network is None:
            return
        before = {(a.get("type"), a.get("address")) for a in _addresses(old)}
        causes = []
        for i, addr in enumerate(_addresses(new)):
            key = (addr.get("type"), addr.get("address"))
            if key[0] not in NODE_ADDRESS_TYPES or key in before:
                continue
            problem = node_address_problem(key[1], self.ranges)
            if problem is not None:
                causes.append(Cause(f"status.addresses[{i}].address",
                                    f"Invalid value: {json.dumps(key[1])}: {problem}"))
        if causes:
            raise invalid(kind, name, causes)

    async def on_create(self, obj: Obj, kind: str, name: str) -> Plan:
        self._check_addresses(obj, None, kind, name)
        spec = obj.setdefault("spec", {})
        cidrs = pod_cidrs(obj)
        if cidrs:
            return self._asked_claims(cidrs, kind, name)
        index = await self.subnets.alloc.pick(self.etcd)
        cidr = self.subnets.to_cidr(index)
        undo_one, undo_list = fill(spec, "podCIDR", cidr), fill(spec, "podCIDRs", [cidr])

        def undo() -> None:
            undo_list()
            undo_one()
        return Plan(claims=[Claim(self.subnets.alloc, index, True, "spec.podCIDRs[0]", cidr, undo)])

    async def on_update(self, new: Obj, old: Obj, kind: str, name: str) -> Plan:
        self._check_addresses(new, old, kind, name)
        nspec = new.setdefault("spec", {})
        old_cidrs, new_cidrs = pod_cidrs(old), pod_cidrs(new)
        if old_cidrs and not new_cidrs:
            nspec["podCIDR"] = old_cidrs[0]
            nspec["podCIDRs"] = list(old_cidrs)
        if new_cidrs and not old_cidrs:
            return self._asked_claims(new_cidrs, kind, name)
        return Plan()

    def on_delete(self, old: Obj) -> Plan:
        plan = Plan()
        for cidr in pod_cidrs(old):
            index = self.subnets.index_of(cidr) if isinstance(cidr, str) else None
            if index is not None:
                plan.releases.append((self.subnets.alloc, index))
        return plan


def _addresses(node: Obj | None) -> list[Obj]:
    status = (node or {}).get("status")
    addresses = status.get("addresses") if isinstance(status, dict) else None
    return [a for a in addresses if isinstance(a, dict)] if isinstance(addresses, list) else []


__all__ = ["Claim", "Plan", "NoAllocations", "ServiceAllocations", "NodeAllocations"]
