"""From pods to endpoints: which pods belong in a service's slices, what each endpoint
says about its pod, and which port numbers a pod serves the service's ports on.

Pure functions over API objects (dicts); no I/O.
"""
from __future__ import annotations

from collections.abc import Mapping

from kubecore.api.types import Obj

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"

# An endpoint port: (name, protocol, port, appProtocol). Slices group endpoints by the
# sorted tuple of these, so pods that resolve a named port differently land apart.
PortTuple = tuple[str, str, int, str]
PortSet = tuple[PortTuple, ...]


def managed_slice_key(slice_: Obj, manager: str) -> str | None:
    """`ns/service` of a slice whose managed-by label is `manager`, None for anyone else's."""
    meta = slice_.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != manager or not labels.get(SERVICE_NAME_LABEL):
        return None
    return f"{meta.get('namespace')}/{labels[SERVICE_NAME_LABEL]}"


def service_selector(service: Obj) -> dict[str, str] | None:
    """The service's selector, or None when it has none (its endpoints are the user's) or is an
    ExternalName (a DNS alias gets no endpoints, whatever selector it kept: kube's
    https://issues.k8s.io/105986)."""
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return None
    selector = spec.get("selector")
    return dict(selector) if selector else None


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def pod_is_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True (the node agent's readiness verdict)."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def pod_wanted(pod: Obj) -> bool:
    """A pod gets an endpoint once it has an IP and until it has finished running.
    Terminating pods stay, marked terminating, so proxies can drain them."""
    status = pod.get("status") or {}
    return bool(status.get("podIP")) and status.get("phase") not in ("Succeeded", "Failed")


def _container_port(pod: Obj, name: str, protocol: str) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name and port.get("protocol", "TCP") == protocol:
                number = port.get("containerPort")
                return number if isinstance(number, int) else None
    return None


def resolve_target_port(service_port: Obj, pod: Obj) -> int | None:
    """The pod's port number for one service port: the targetPort number itself, or the
    container port of that name and protocol (None when the pod has no such port)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str):
        if target.isdigit():
            return int(target)
        return _container_port(pod, target, service_port.get("protocol", "TCP"))
    return None


def endpoint_ports(service: Obj, pod: Obj) -> PortSet:
    """The ports this pod serves the service on, sorted: a port the pod cannot resolve is
    left out (as kube does), the others still serve."""
    out: list[PortTuple] = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        number = resolve_target_port(sp, pod)
        if number is None:
            continue
        out.append((sp.get("name") or "", sp.get("protocol") or "TCP", number,
                    sp.get("appProtocol") or ""))
    return tuple(sorted(out))


def ports_to_api(ports: PortSet) -> list[Obj]:
    out = []
    for name, protocol, port, app_protocol in ports:
        p: Obj = {"name": name, "protocol": protocol, "port": port}
        if app_protocol:
            p["appProtocol"] = app_protocol
        out.append(p)
    return out


def ports_from_api(ports: list[Obj] | None) -> PortSet:
    out = []
    for p in ports or []:
        port = p.get("port")
        out.append((p.get("name") or "", p.get("protocol") or "TCP",
                    port if isinstance(port, int) else 0, p.get("appProtocol") or ""))
    return tuple(sorted(out))


def pod_endpoint(service: Obj, pod: Obj) -> Obj:
    """The endpoint for `pod` as the slice carries it (kube's podToEndpoint). `ready` is
    what proxies route new connections by, forced true by `publishNotReadyAddresses` (what
    DNS publishes for a StatefulSet's peers before they are ready); `serving` is the pod's
    own readiness whatever the Service says, so proxies can still tell and drain it."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    terminating = bool(meta.get("deletionTimestamp"))
    ready = pod_is_ready(pod)
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    endpoint: Obj = {
        "addresses": [(pod.get("status") or {})["podIP"]],
        "conditions": {"ready": publish_not_ready or (ready and not terminating),
                       "serving": ready,
                       "terminating": terminating},
    }
    svc_name = (service.get("metadata") or {}).get("name")
    if spec.get("hostname") and spec.get("subdomain") == svc_name:
        endpoint["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        endpoint["nodeName"] = spec["nodeName"]
    endpoint["targetRef"] = {"kind": "Pod", "name": meta.get("name", ""),
                             "namespace": meta.get("namespace", ""), "uid": meta.get("uid", "")}
    return endpoint


def canonical_endpoint(endpoint: Obj) -> Obj:
    """An endpoint reduced to the fields this controller writes, in one shape, so a slice
    read back from the server compares equal to the one that was planned."""
    out: Obj = {"addresses": list(endpoint.get("addresses") or [])}
    cond = endpoint.get("conditions") or {}
    out["conditions"] = {k: bool(cond.get(k)) for k in ("ready", "serving", "terminating")}
    for field in ("hostname", "nodeName", "zone"):
        if endpoint.get(field):
            out[field] = endpoint[field]
    ref = endpoint.get("targetRef")
    if ref:
        out["targetRef"] = {k: ref.get(k, "") for k in ("kind", "name", "namespace", "uid")}
    return out


def endpoint_identity(endpoint: Obj) -> str:
    """What makes two endpoints the same one across writes: the pod's uid, else the address."""
    ref = endpoint.get("targetRef") or {}
    if ref.get("uid"):
        return f"uid:{ref['uid']}"
    return "ip:" + ",".join(endpoint.get("addresses") or [])
