"""The cluster's network as one picture: nodes with their pod ranges and addresses, the pods on
each (IP, phase, readiness), Services with their cluster IPs and the endpoints their
EndpointSlices list, and the routes between nodes (each node reaches another's pod range via
that node's InternalIP). Pure: API objects in, one JSON-able dict out, in a stable order, so a
page can draw it and a test can compare it."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Obj = Mapping[str, Any]


def _meta(obj: Obj, key: str, default: str = "") -> str:
    return str((obj.get("metadata") or {}).get(key) or default)


def _internal_ip(node: Obj) -> str:
    for addr in (node.get("status") or {}).get("addresses") or ():
        if addr.get("type") == "InternalIP":
            return str(addr.get("address") or "")
    return ""


def _ready(conditions: Iterable[Obj] | None, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions or ())


def _pod(p: Obj) -> dict[str, Any]:
    status, spec = p.get("status") or {}, p.get("spec") or {}
    deleting = bool((p.get("metadata") or {}).get("deletionTimestamp"))
    return {"namespace": _meta(p, "namespace", "default"), "name": _meta(p, "name"), "ip": status.get("podIP") or "",
            "phase": "Terminating" if deleting else status.get("phase") or "Pending",
            "ready": _ready(status.get("conditions"), "Ready"), "hostNetwork": bool(spec.get("hostNetwork")),
            "labels": dict((p.get("metadata") or {}).get("labels") or {})}


def _endpoints(svc: Obj, slices: Iterable[Obj], pods_by_ip: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    ns, name = _meta(svc, "namespace", "default"), _meta(svc, "name")
    out = []
    for s in slices:
        labels = (s.get("metadata") or {}).get("labels") or {}
        if _meta(s, "namespace", "default") != ns or labels.get("kubernetes.io/service-name") != name:
            continue
        ports = [p.get("port") for p in s.get("ports") or () if p.get("port")]
        for ep in s.get("endpoints") or ():
            for ip in ep.get("addresses") or ():
                pod = pods_by_ip.get(ip)
                out.append({"ip": ip, "ports": ports, "ready": (ep.get("conditions") or {}).get("ready") is not False,
                            "node": ep.get("nodeName") or "",
                            "pod": f"{pod['namespace']}/{pod['name']}" if pod else ""})
    return sorted(out, key=lambda e: (e["ip"], e["ports"]))


def _service(svc: Obj, slices: list[Obj], pods_by_ip: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    spec = svc.get("spec") or {}
    return {"namespace": _meta(svc, "namespace", "default"), "name": _meta(svc, "name"),
            "type": spec.get("type") or "ClusterIP", "clusterIP": spec.get("clusterIP") or "",
            "ports": [{"name": p.get("name") or "", "port": p.get("port"), "protocol": p.get("protocol") or "TCP",
                       "targetPort": p.get("targetPort", p.get("port"))} for p in spec.get("ports") or ()],
            "endpoints": _endpoints(svc, slices, pods_by_ip)}


def _node(n: Obj, pods: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": _meta(n, "name"), "ip": _internal_ip(n), "podCIDR": (n.get("spec") or {}).get("podCIDR") or "",
            "ready": _ready((n.get("status") or {}).get("conditions"), "Ready"),
            "pods": sorted(pods, key=lambda p: (p["namespace"], p["name"]))}


def picture(pods: Iterable[Obj], services: Iterable[Obj], slices: Iterable[Obj],
            nodes: Iterable[Obj]) -> dict[str, Any]:
    slices = list(slices)
    by_node: dict[str, list[dict[str, Any]]] = {}
    pods_by_ip: dict[str, dict[str, Any]] = {}
    for p in pods:
        drawn = _pod(p)
        by_node.setdefault((p.get("spec") or {}).get("nodeName") or "", []).append(drawn)
        if drawn["ip"] and not drawn["hostNetwork"]:
            pods_by_ip[drawn["ip"]] = drawn
    drawn_nodes = [_node(n, by_node.get(_meta(n, "name"), [])) for n in sorted(nodes, key=lambda n: _meta(n, "name"))]
    routes = [{"from": a["name"], "to": b["name"], "cidr": b["podCIDR"], "via": b["ip"]}
              for a in drawn_nodes for b in drawn_nodes if a is not b and b["podCIDR"] and b["ip"]]
    drawn_services = [_service(s, slices, pods_by_ip)
                      for s in sorted(services, key=lambda s: (_meta(s, "namespace"), _meta(s, "name")))]
    return {"nodes": drawn_nodes, "services": drawn_services, "routes": routes,
            "unscheduled": sorted(by_node.get("", []), key=lambda p: (p["namespace"], p["name"]))}
