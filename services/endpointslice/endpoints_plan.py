"""The core/v1 Endpoints of a Service with a selector, from its pods: kube's endpoints
controller (pkg/controller/endpoint) as pure functions.

One Endpoints object per Service, named as the Service, carrying its labels (plus
`service.kubernetes.io/headless` for a headless one). Each selected pod that has an IP and
has not finished gives one address per Service port it can serve (a named targetPort
resolved against its container ports); ready pods' addresses go in `addresses`, the others
in `notReadyAddresses` (all in `addresses` with `publishNotReadyAddresses`, which also keeps
terminating pods). The subsets are then repacked as kube's RepackSubsets does: one subset
per set of addresses that share the same ports, so equal content always compares equal.
Past 1,000 addresses the object is truncated and annotated over capacity.

`plan_endpoints` decides the one write (create, update, delete, or none); the controller
only carries it out.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Literal, NamedTuple

from kubecore.api.subsets import repack_subsets
from kubecore.api.types import Obj
from services.endpointslice.endpoints import (
    pod_is_ready,
    resolve_target_port,
    selector_matches,
    service_selector,
)

LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_CAPACITY = 1000

# A port as the Endpoints carries it: (name, port, protocol, appProtocol); None stands for
# a headless Service's subset without ports.
PortKey = tuple[str, int, str, str] | None


class EndpointsWrite(NamedTuple):
    action: Literal["create", "update", "delete", "none"]
    endpoints: Obj | None = None


def should_be_in_endpoints(pod: Obj, *, include_terminating: bool) -> bool:
    """kube's ShouldPodBeInEndpoints: not finished, has an IP, and not terminating unless
    the Service publishes not-ready addresses."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    return include_terminating or not (pod.get("metadata") or {}).get("deletionTimestamp")


def is_headless(service: Obj) -> bool:
    """No ClusterIP to proxy through: `None`, or none set."""
    return (service.get("spec") or {}).get("clusterIP") in ("None", "", None)


def _pod_ipv4(pod: Obj) -> str | None:
    """The pod's IPv4 address (this cluster's Services are single-stack IPv4)."""
    status = pod.get("status") or {}
    candidates = [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, dict)]
    for ip in [*candidates, status.get("podIP")]:
        if isinstance(ip, str) and ip and ":" not in ip:
            return ip
    return None


def pod_address(service: Obj, pod: Obj) -> Obj | None:
    """The EndpointAddress for `pod`, with its hostname when the pod names the Service as its
    subdomain (kube's ShouldSetHostname); None when the pod has no IPv4 address."""
    ip = _pod_ipv4(pod)
    if ip is None:
        return None
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    address: Obj = {"ip": ip}
    svc_meta = service.get("metadata") or {}
    if (spec.get("hostname") and spec.get("subdomain") == svc_meta.get("name")
            and meta.get("namespace") == svc_meta.get("namespace")):
        address["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    address["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace", ""),
                            "name": meta.get("name", ""), "uid": meta.get("uid", "")}
    return address


def _pod_ports(service: Obj, pod: Obj) -> list[PortKey]:
    """The Service's ports as this pod serves them; [None] for a headless Service without
    ports; [] when the pod serves none of them."""
    ports = (service.get("spec") or {}).get("ports") or []
    if not ports:
        return [None] if is_headless(service) else []
    out: list[PortKey] = []
    for sp in ports:
        number = resolve_target_port(sp, pod)
        if number is not None:
            out.append((sp.get("name") or "", number, sp.get("protocol") or "TCP",
                        sp.get("appProtocol") or ""))
    return out


def _port_to_api(port: tuple[str, int, str, str]) -> Obj:
    name, number, protocol, app_protocol = port
    out: Obj = {"port": number, "protocol": protocol}
    if name:
        out["name"] = name
    if app_protocol:
        out["appProtocol"] = app_protocol
    return out


def desired_subsets(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The repacked subsets for the pods the Service selects (any pods may be passed): one
    subset per address and port, as kube's controller builds them, then repacked."""
    selector = service_selector(service) or {}
    spec = service.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    namespace = (service.get("metadata") or {}).get("namespace")
    raw: list[Obj] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("namespace") != namespace or not selector_matches(selector, meta.get("labels")):
            continue
        if not should_be_in_endpoints(pod, include_terminating=publish):
            continue
        address = pod_address(service, pod)
        if address is None:
            continue
        field = "addresses" if publish or pod_is_ready(pod) else "notReadyAddresses"
        for port in _pod_ports(service, pod):
            raw.append({field: [address], "ports": [] if port is None else [_port_to_api(port)]})
    return repack_subsets(raw)


def _count(subsets: list[Obj], field: str) -> int:
    return sum(len(s.get(field) or []) for s in subsets)


def truncate(subsets: list[Obj]) -> bool:
    """kube's truncateEndpoints: past MAX_CAPACITY addresses keep ready ones first, each
    subset its share (rounded up) of what fits; True when anything was cut."""
    total_ready, total_not_ready = _count(subsets, "addresses"), _count(subsets, "notReadyAddresses")
    if total_ready + total_not_ready <= MAX_CAPACITY:
        return False
    truncate_ready = total_ready > MAX_CAPACITY
    room = MAX_CAPACITY if truncate_ready else MAX_CAPACITY - total_ready
    total = total_ready if truncate_ready else total_not_ready
    field = "addresses" if truncate_ready else "notReadyAddresses"
    left = room
    for subset in subsets:
        share = min(left, math.ceil(len(subset.get(field) or []) / total * room)) if total else 0
        subset[field] = (subset.get(field) or [])[:share]
        if truncate_ready:
            subset["notReadyAddresses"] = []
        left -= len(subset[field])
        for key in ("addresses", "notReadyAddresses"):
            if key in subset and not subset[key]:
                del subset[key]
    return True


def desired_labels(service: Obj) -> dict[str, str]:
    labels = {k: v for k, v in ((service.get("metadata") or {}).get("labels") or {}).items()
              if k != HEADLESS_LABEL}
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def _same_subsets(a: list[Obj], b: list[Obj]) -> bool:
    """Equal but for the targetRefs' resourceVersions (a pod's unrelated changes)."""
    def strip(subsets: list[Obj]) -> list[Obj]:
        out = copy.deepcopy(subsets)
        for subset in out:
            for field in ("addresses", "notReadyAddresses"):
                for address in subset.get(field) or []:
                    (address.get("targetRef") or {}).pop("resourceVersion", None)
        return out
    return strip(a) == strip(b)


def _capacity_annotation_right(current: Obj) -> bool:
    subsets = current.get("subsets") or []
    if _count(subsets, "addresses") + _count(subsets, "notReadyAddresses") > MAX_CAPACITY:
        return False
    return OVER_CAPACITY not in ((current.get("metadata") or {}).get("annotations") or {})


def plan_endpoints(service: Obj | None, pods: Iterable[Obj], current: Obj | None, *,
                   trigger_time: str | None = None) -> EndpointsWrite:
    """The one write that makes `current` (the cached Endpoints of the Service's name, or
    None) what the Service's pods say. A missing Service deletes it; a Service without a
    selector (its Endpoints are the user's) or of type ExternalName leaves it alone."""
    if service is None:
        return EndpointsWrite("delete", current) if current is not None else EndpointsWrite("none")
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName" or spec.get("selector") is None:
        return EndpointsWrite("none")
    subsets = desired_subsets(service, pods)
    labels = desired_labels(service)
    if current is not None and _unchanged(current, subsets, labels):
        return EndpointsWrite("none")
    svc_meta = service.get("metadata") or {}
    new: Obj = copy.deepcopy(current) if current is not None else {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": svc_meta.get("name"), "namespace": svc_meta.get("namespace")}}
    meta = new.setdefault("metadata", {})
    annotations = _annotations(meta.get("annotations") or {}, trigger_time=trigger_time,
                               truncated=truncate(subsets))
    meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    new["subsets"] = subsets
    return EndpointsWrite("update" if current is not None else "create", new)


def _unchanged(current: Obj, subsets: list[Obj], labels: dict[str, str]) -> bool:
    """kube's no-op test: same subsets, same labels (the headless one aside), and the
    over-capacity annotation where it belongs. The trigger time alone causes no write."""
    current_labels = dict((current.get("metadata") or {}).get("labels") or {})
    current_labels.pop(HEADLESS_LABEL, None)
    return (_same_subsets(current.get("subsets") or [], subsets)
            and current_labels == {k: v for k, v in labels.items() if k != HEADLESS_LABEL}
            and _capacity_annotation_right(current))


def _annotations(current: dict[str, str], *, trigger_time: str | None,
                 truncated: bool) -> dict[str, str]:
    out = dict(current)
    if trigger_time:
        out[LAST_CHANGE_TRIGGER_TIME] = trigger_time
    else:
        out.pop(LAST_CHANGE_TRIGGER_TIME, None)
    if truncated:
        out[OVER_CAPACITY] = "truncated"
    else:
        out.pop(OVER_CAPACITY, None)
    return out
