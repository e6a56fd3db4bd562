"""What a Service's type asks of the cluster, and what an update does to the fields that
depend on the type (kube's pkg/registry/core/service: strategy.go's dropTypeDependentFields,
storage.go's patchAllocatedValues, pkg/api/v1/service's ExternallyAccessible and
NeedsHealthCheck).

One place for these predicates, because the defaults, the validation, the allocations in
etcd and the clients (proxy, load-balancer controller) must agree on them: a Service that
`needs_node_ports` gets node ports claimed, and a type change that leaves that set gives
them back in the same write.

On an update kube first drops what the new type no longer uses *if the client did not
change it* (so `kubectl patch -p '{"spec":{"type":"ClusterIP"}}'` of a NodePort Service
releases its node ports instead of failing validation), then fills in what it allocated
before and the client left out (so re-applying the original manifest keeps them).
"""
from __future__ import annotations

from typing import Any

from kubecore.api.types import Obj

CLUSTER_IP = "ClusterIP"
NODE_PORT = "NodePort"
LOAD_BALANCER = "LoadBalancer"
EXTERNAL_NAME = "ExternalName"
TYPES = (CLUSTER_IP, EXTERNAL_NAME, LOAD_BALANCER, NODE_PORT)  # sorted, as kube lists them


def _spec(svc: Obj) -> Obj:
    spec = svc.get("spec")
    return spec if isinstance(spec, dict) else {}


def service_type(svc: Obj) -> Any:
    return _spec(svc).get("type") or CLUSTER_IP


def _ports(svc: Obj) -> list[Obj]:
    ports = _spec(svc).get("ports")
    return [p for p in ports if isinstance(p, dict)] if isinstance(ports, list) else []


def needs_cluster_ip(svc: Obj) -> bool:
    """Every type but ExternalName has a cluster IP (or is headless: "None" counts)."""
    return bool(service_type(svc) != EXTERNAL_NAME)


def allocates_node_ports(svc: Obj) -> bool:
    """Whether ports without a nodePort get one picked: NodePort, and LoadBalancer unless
    `allocateLoadBalancerNodePorts: false` (kube's shouldAllocateNodePorts)."""
    stype = service_type(svc)
    if stype == NODE_PORT:
        return True
    return bool(stype == LOAD_BALANCER and _spec(svc).get("allocateLoadBalancerNodePorts") is not False)


def can_hold_node_ports(svc: Obj) -> bool:
    """Types whose ports may carry node ports (a LoadBalancer that allocates none still keeps
    those the client asked for)."""
    return bool(service_type(svc) in (NODE_PORT, LOAD_BALANCER))


def externally_accessible(svc: Obj) -> bool:
    """NodePort, LoadBalancer, or a ClusterIP Service with externalIPs: those have an
    externalTrafficPolicy."""
    stype = service_type(svc)
    return bool(stype in (NODE_PORT, LOAD_BALANCER)
                or (stype == CLUSTER_IP and bool(_spec(svc).get("externalIPs"))))


def needs_health_check_node_port(svc: Obj) -> bool:
    """A LoadBalancer that keeps traffic on nodes with endpoints has a port on every node
    for the load balancer's health checks."""
    spec = _spec(svc)
    return bool(service_type(svc) == LOAD_BALANCER and spec.get("externalTrafficPolicy") == "Local")


def node_ports(svc: Obj) -> list[int]:
    """The node ports a Service holds (each once, also where TCP and UDP share one)."""
    if not can_hold_node_ports(svc):
        return []
    found: list[int] = []
    for p in _ports(svc):
        np = p.get("nodePort")
        if isinstance(np, int) and not isinstance(np, bool) and np and np not in found:
            found.append(np)
    return found


# --- updates ---------------------------------------------------------------------------------

def _same(new: Obj, old: Obj, key: str) -> bool:
    return bool(_spec(new).get(key) == _spec(old).get(key))


def _same_node_ports(new: Obj, old: Obj) -> bool:
    return [p.get("nodePort") for p in _ports(new)] == [p.get("nodePort") for p in _ports(old)]


def drop_type_dependent_fields(new: Obj, old: Obj) -> None:
    """Wipe what the new type no longer uses and the client left as it was (dropTypeDependentFields)."""
    nspec = new.get("spec")
    if not isinstance(nspec, dict):
        return
    if needs_cluster_ip(old) and not needs_cluster_ip(new):
        _drop_cluster_ip_fields(nspec, new, old)
    if can_hold_node_ports(old) and not can_hold_node_ports(new) and _same_node_ports(new, old):
        for p in _ports(new):
            p.pop("nodePort", None)
    if needs_health_check_node_port(old) and not needs_health_check_node_port(new):
        _drop_if_same(nspec, new, old, "healthCheckNodePort")
    if service_type(old) == LOAD_BALANCER and service_type(new) != LOAD_BALANCER:
        _drop_if_same(nspec, new, old, "allocateLoadBalancerNodePorts", "loadBalancerClass")
    if externally_accessible(old) and not externally_accessible(new):
        _drop_if_same(nspec, new, old, "externalTrafficPolicy")
    if service_type(new) != LOAD_BALANCER:
        new["status"] = {"loadBalancer": {}}


def _drop_if_same(nspec: Obj, new: Obj, old: Obj, *keys: str) -> None:
    for key in keys:
        if _same(new, old, key):
            nspec.pop(key, None)


def _drop_cluster_ip_fields(nspec: Obj, new: Obj, old: Obj) -> None:
    if _same(new, old, "clusterIP") and _same(new, old, "clusterIPs"):
        nspec.pop("clusterIP", None)
        nspec.pop("clusterIPs", None)
    _drop_if_same(nspec, new, old, "ipFamilies", "ipFamilyPolicy")


def normalize_cluster_ips(new: Obj, old: Obj) -> None:
    """Keep clusterIP and clusterIPs in step on an update from a client that sets only the
    first (kube's NormalizeClusterIPs): a changed clusterIP with clusterIPs left as they
    were moves clusterIPs along (validation then says what may not change); a cleared
    clusterIP with clusterIPs left as they were clears both."""
    nspec, ospec = new.get("spec"), _spec(old)
    if not isinstance(nspec, dict):
        return
    if ospec.get("clusterIPs") and not nspec.get("clusterIPs") \
            and ospec.get("clusterIP") == nspec.get("clusterIP"):
        nspec["clusterIPs"] = list(ospec["clusterIPs"])
    if ospec.get("clusterIP") == nspec.get("clusterIP"):
        return
    if ospec.get("clusterIP") and not nspec.get("clusterIP") and _same(new, old, "clusterIPs"):
        nspec.pop("clusterIPs", None)
    if nspec.get("clusterIP") and _same(new, old, "clusterIPs"):
        nspec["clusterIPs"] = [nspec["clusterIP"]]


def patch_allocated_values(new: Obj, old: Obj) -> None:
    """Keep what was allocated when the client leaves it out (patchAllocatedValues), so
    applying the manifest a Service was created from again changes nothing."""
    nspec, ospec = new.get("spec"), _spec(old)
    if not isinstance(nspec, dict):
        return
    if needs_cluster_ip(old) and needs_cluster_ip(new):
        if not nspec.get("clusterIP") and ospec.get("clusterIP"):
            nspec["clusterIP"] = ospec["clusterIP"]
        if not nspec.get("clusterIPs") and ospec.get("clusterIPs"):
            nspec["clusterIPs"] = list(ospec["clusterIPs"])
    if can_hold_node_ports(old) and can_hold_node_ports(new):
        _patch_node_ports(new, old)
    if needs_health_check_node_port(old) and needs_health_check_node_port(new) \
            and not nspec.get("healthCheckNodePort") and ospec.get("healthCheckNodePort"):
        nspec["healthCheckNodePort"] = ospec["healthCheckNodePort"]


def _patch_node_ports(new: Obj, old: Obj) -> None:
    """A port without a nodePort gets the one its namesake had, unless another port of the
    new spec holds that one already."""
    used = set(node_ports(old)) & set(node_ports(new))
    by_name = {p.get("name") or "": p.get("nodePort") for p in _ports(old)}
    for p in _ports(new):
        if not p.get("nodePort"):
            previous = by_name.get(p.get("name") or "")
            if previous and previous not in used:
                p["nodePort"] = previous
