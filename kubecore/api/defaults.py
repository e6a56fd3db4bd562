"""What the API server fills in on every write before validating (kubernetes'
`pkg/apis/<group>/v1/defaults.go`), one `default_<kind>` per kind, grouped as the API groups are.

Defaulting changes the object in place and only adds what is missing (or null: an explicit
null counts as absent), so the client's own fields, known or not, survive.
"""
from __future__ import annotations

from typing import Any

from kubecore.api.types import Obj


def _child(obj: Obj, key: str, default: Any = None) -> Any:
    """obj[key], set to `default` (a new dict unless given) when missing or null, as
    defaulting treats an explicit null like an absent field."""
    if obj.get(key) is None:
        obj[key] = {} if default is None else default
    return obj[key]


# --- core/v1 -----------------------------------------------------------------------------

def default_service(obj: Obj) -> None:
    spec = _child(obj, "spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] == "NodePort":
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and isinstance(port.get("port"), int):
                port["targetPort"] = port["port"]
    _child(obj, "status", {"loadBalancer": {}})


def carry_over_service_allocations(new: Obj, old: Obj) -> None:
    """An update that leaves clusterIP or nodePorts unset keeps the allocated values,
    as kube-apiserver does (so `kubectl apply` of the original manifest works)."""
    nspec, ospec = _child(new, "spec", {}), old.get("spec") or {}
    if not nspec.get("clusterIP") and ospec.get("clusterIP"):
        nspec["clusterIP"] = ospec["clusterIP"]
        if ospec.get("clusterIPs") and not nspec.get("clusterIPs"):
            nspec["clusterIPs"] = list(ospec["clusterIPs"])
    if nspec.get("type") == "NodePort" and ospec.get("type") == "NodePort":
        _carry_over_node_ports(nspec.get("ports") or [], ospec.get("ports") or [])


def _carry_over_node_ports(ports: list[Obj], old_ports: list[Obj]) -> None:
    old_by_key = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_ports}
    for p in ports:
        if not p.get("nodePort"):
            np = old_by_key.get((p.get("port"), p.get("protocol", "TCP")))
            if np:
                p["nodePort"] = np


def default_container(c: Obj) -> None:
    c.setdefault("imagePullPolicy", "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(c, dict):
            default_container(c)


def default_pod(obj: Obj) -> None:
    spec = _child(obj, "spec", {})
    default_pod_spec(spec)
    if spec.get("hostNetwork") is True:
        _default_host_network_ports(spec)
    status = _child(obj, "status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", "BestEffort")


def _default_host_network_ports(spec: Obj) -> None:
    """A Pod on the node's network binds its container ports on the node: an unset hostPort is
    the containerPort (SetDefaults_Pod; templates keep theirs unset)."""
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for p in (c.get("ports") or []) if isinstance(c, dict) else []:
            if isinstance(p, dict) and not p.get("hostPort"):
                p["hostPort"] = p.get("containerPort")


def default_node(obj: Obj) -> None:
    spec = _child(obj, "spec", {})
    _child(obj, "status", {})
    # kube keeps one list of pod ranges: podCIDRs, from podCIDR when only that is given;
    # podCIDR is its first entry. So the two never disagree in what is stored.
    cidrs = spec.get("podCIDRs")
    if cidrs:
        spec["podCIDR"] = cidrs[0]
    elif spec.get("podCIDR"):
        spec["podCIDRs"] = [spec["podCIDR"]]


def default_secret(obj: Obj) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"


def default_namespace(obj: Obj) -> None:
    _child(obj, "spec", {"finalizers": ["kubernetes"]})
    # kubectl sends `status: {}`: the phase is filled in all the same
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    status.setdefault("phase", "Active")


# --- discovery.k8s.io/v1 ----------------------------------------------------------------------

def default_endpointslice(obj: Obj) -> None:
    for p in obj.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            p.setdefault("name", "")


# --- apps/v1 ------------------------------------------------------------------------------------

def default_workload(obj: Obj) -> None:
    """What a ReplicaSet and a Deployment both get: one replica, a defaulted pod template."""
    spec = _child(obj, "spec", {})
    spec.setdefault("replicas", 1)
    tmpl = _child(spec, "template", {})
    default_pod_spec(_child(tmpl, "spec", {}))
    _child(tmpl, "metadata", {})
    _child(obj, "status", {})


default_replicaset = default_workload


def default_deployment(obj: Obj) -> None:
    default_workload(obj)
    spec = obj["spec"]
    spec.setdefault("strategy", {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    if spec["strategy"].get("type", "RollingUpdate") == "RollingUpdate":
        spec["strategy"].setdefault("type", "RollingUpdate")
        ru = spec["strategy"].setdefault("rollingUpdate", {})
        ru.setdefault("maxSurge", "25%")
        ru.setdefault("maxUnavailable", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)


# --- rbac.authorization.k8s.io/v1 ----------------------------------------------------------

RBAC_GROUP = "rbac.authorization.k8s.io"


def default_binding(obj: Obj) -> None:
    """RoleBinding and ClusterRoleBinding: roleRef.apiGroup is RBAC's when left out, and a
    User or Group subject's apiGroup too (kube's SetDefaults_RoleBinding, _Subject)."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict) and not subject.get("apiGroup") \
                and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


# --- coordination.k8s.io/v1, networking.k8s.io/v1 ----------------------------------------------

def default_lease(obj: Obj) -> None:
    """A Lease always has a spec (Go writes the struct even when empty)."""
    _child(obj, "spec", {})


def default_networkpolicy(obj: Obj) -> None:
    """kube's SetDefaults_NetworkPolicy and _NetworkPolicyPort: policyTypes is Ingress, and
    Egress too when there are egress rules; a port's protocol is TCP. podSelector is not
    optional in v1 (an empty one selects every pod of the namespace)."""
    spec = _child(obj, "spec", {})
    _child(spec, "podSelector", {})
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(port, dict) and port.get("protocol") is None:
                    port["protocol"] = "TCP"
