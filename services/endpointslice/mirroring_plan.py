"""EndpointSlice mirroring: a Service without a selector gets its endpoints from the
Endpoints its user writes; proxies and DNS read EndpointSlices only, so those Endpoints
are mirrored into slices (kube's pkg/controller/endpointslicemirroring), as pure
functions.

Each subset's addresses (at most `max_per_subset` of them, ready first) become endpoints
of one slice per address family and port set, `ready` as the address was listed, with its
hostname, node and targetRef. A slice is labelled `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io`, carries
the Endpoints' other labels and annotations (but the trigger time and kubectl's
last-applied configuration), and is owned by the Endpoints. Nothing is mirrored (and what
was is deleted) when the Endpoints or Service is missing, the Service has a selector or is
an ExternalName, or the Endpoints opt out with `endpointslice.kubernetes.io/skip-mirror:
"true"` (as the API server's own `kubernetes` Endpoints do) or are a leader-election lock.
"""
from __future__ import annotations

import copy
import ipaddress
from typing import Any

from kubecore.api.types import Obj
from services.endpointslice.endpoints import MANAGED_BY_LABEL, SERVICE_NAME_LABEL
from services.endpointslice.planner import Plan

MIRRORING_CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
NOT_COPIED_ANNOTATIONS = ("endpoints.kubernetes.io/last-change-trigger-time",
                          "kubectl.kubernetes.io/last-applied-configuration")
MAX_ENDPOINTS_PER_SUBSET = 1000

# (addressType, sorted ports as (name, protocol, port, appProtocol))
GroupKey = tuple[str, tuple[tuple[str, str, int, str], ...]]


def should_mirror(endpoints: Obj | None, service: Obj | None) -> bool:
    if endpoints is None or service is None:
        return False
    meta = endpoints.get("metadata") or {}
    if (meta.get("labels") or {}).get(SKIP_MIRROR_LABEL) == "true":
        return False
    if LEADER_ANNOTATION in (meta.get("annotations") or {}):
        return False
    spec = service.get("spec") or {}
    return spec.get("type") != "ExternalName" and spec.get("selector") is None


def _ports_key(ports: Any) -> tuple[tuple[str, str, int, str], ...]:
    out = []
    for p in ports or []:
        if isinstance(p, dict):
            number = p.get("port")
            out.append((str(p.get("name") or ""), str(p.get("protocol") or "TCP"),
                        number if isinstance(number, int) else 0, str(p.get("appProtocol") or "")))
    return tuple(sorted(out))


def _ports_to_api(key: tuple[tuple[str, str, int, str], ...]) -> list[Obj]:
    out = []
    for name, protocol, port, app_protocol in key:
        p: Obj = {"name": name, "protocol": protocol, "port": port}
        if app_protocol:
            p["appProtocol"] = app_protocol
        out.append(p)
    return out


def address_endpoint(address: Obj, ready: bool) -> tuple[str, Obj] | None:
    """(addressType, endpoint) for one Endpoints address; None when it is not an IP."""
    try:
        ip = ipaddress.ip_address(str(address.get("ip") or ""))
    except ValueError:
        return None
    endpoint: Obj = {"addresses": [str(ip)], "conditions": {"ready": ready}}
    if address.get("hostname"):
        endpoint["hostname"] = address["hostname"]
    if address.get("nodeName"):
        endpoint["nodeName"] = address["nodeName"]
    if address.get("targetRef"):
        endpoint["targetRef"] = copy.deepcopy(address["targetRef"])
    return ("IPv6" if ip.version == 6 else "IPv4"), endpoint


def desired_groups(endpoints: Obj, max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET
                   ) -> dict[GroupKey, list[Obj]]:
    """Group key -> the endpoints of that address family and port set, each address once."""
    groups: dict[GroupKey, dict[tuple[str, str], Obj]] = {}
    for subset in endpoints.get("subsets") or []:
        if not isinstance(subset, dict):
            continue
        ports = _ports_key(subset.get("ports"))
        listed = [(a, True) for a in subset.get("addresses") or []]
        listed += [(a, False) for a in subset.get("notReadyAddresses") or []]
        added = 0
        for address, ready in listed:
            if added >= max_per_subset:
                break
            made = address_endpoint(address, ready) if isinstance(address, dict) else None
            if made is None:
                continue
            added += 1
            family, endpoint = made
            identity = (endpoint["addresses"][0], str((endpoint.get("targetRef") or {}).get("uid") or ""))
            groups.setdefault((family, ports), {}).setdefault(identity, endpoint)
    return {key: list(members.values()) for key, members in groups.items()}


def owner_reference(endpoints: Obj) -> Obj:
    meta = endpoints.get("metadata") or {}
    return {"apiVersion": "v1", "kind": "Endpoints", "name": meta.get("name", ""),
            "uid": meta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}


def slice_metadata(endpoints: Obj) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations a mirrored slice carries."""
    meta = endpoints.get("metadata") or {}
    labels = {**(meta.get("labels") or {}), SERVICE_NAME_LABEL: meta.get("name", ""),
              MANAGED_BY_LABEL: MIRRORING_CONTROLLER_NAME}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in NOT_COPIED_ANNOTATIONS}
    return labels, annotations


def _render(endpoints: Obj, key: GroupKey, members: list[Obj], base: Obj | None) -> Obj:
    labels, annotations = slice_metadata(endpoints)
    meta = endpoints.get("metadata") or {}
    out: Obj = copy.deepcopy(base) if base is not None else {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"generateName": f"{meta.get('name')}-", "namespace": meta.get("namespace")}}
    out_meta = out.setdefault("metadata", {})
    out_meta["labels"] = labels
    if annotations:
        out_meta["annotations"] = annotations
    else:
        out_meta.pop("annotations", None)
    out_meta["ownerReferences"] = [owner_reference(endpoints)]
    out["addressType"] = key[0]
    out["endpoints"] = members
    out["ports"] = _ports_to_api(key[1])
    return out


def _canonical(slice_: Obj) -> tuple[Any, ...]:
    """What a mirrored slice says, for comparing the cached one with the wanted one."""
    meta = slice_.get("metadata") or {}
    return (meta.get("labels") or {}, meta.get("annotations") or {}, meta.get("ownerReferences"),
            slice_.get("addressType"), _ports_key(slice_.get("ports")),
            sorted((_endpoint_canonical(e) for e in slice_.get("endpoints") or []), key=repr))


def _endpoint_canonical(endpoint: Obj) -> tuple[Any, ...]:
    ref = {k: v for k, v in (endpoint.get("targetRef") or {}).items() if k != "resourceVersion"}
    return (endpoint.get("addresses"), bool((endpoint.get("conditions") or {}).get("ready")),
            endpoint.get("hostname"), endpoint.get("nodeName"), ref)


def _group_of(slice_: Obj) -> GroupKey:
    return (str(slice_.get("addressType") or ""), _ports_key(slice_.get("ports")))


def plan_mirror(endpoints: Obj | None, service: Obj | None, existing: list[Obj], *,
                max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> Plan:
    """The writes that make `existing` (the slices this controller mirrored for the name)
    mirror `endpoints`: per group the first slice is kept (rewritten if it differs), the
    others deleted; a new group takes a slice that would be deleted before a new one is
    created (kube's recycleSlices)."""
    ordered = sorted(existing, key=lambda s: str((s.get("metadata") or {}).get("name") or ""))
    if endpoints is None or not should_mirror(endpoints, service):
        return Plan([], [], ordered)
    by_group: dict[GroupKey, list[Obj]] = {}
    for slice_ in ordered:
        by_group.setdefault(_group_of(slice_), []).append(slice_)
    out = Plan([], [], [])
    wanted = desired_groups(endpoints, max_per_subset)
    for key in sorted(set(by_group) - set(wanted)):
        out.to_delete.extend(by_group[key])
    for key, members in sorted(wanted.items()):
        slices = by_group.get(key, [])
        if not slices:
            out.to_create.append(_render(endpoints, key, members, None))
            continue
        out.to_delete.extend(slices[1:])
        rendered = _render(endpoints, key, members, slices[0])
        if _canonical(rendered) != _canonical(slices[0]):
            out.to_update.append(rendered)
    if (endpoints.get("metadata") or {}).get("deletionTimestamp"):
        out.to_create.clear()  # Endpoints on their way out get no new slices
    _recycle(out)
    return out


def _recycle(out: Plan) -> None:
    """A slice to create goes into one to delete of its address family (immutable) instead."""
    for doomed in list(reversed(out.to_delete)):
        fresh = next((c for c in out.to_create if c["addressType"] == doomed.get("addressType")), None)
        if fresh is None:
            continue
        out.to_create.remove(fresh)
        out.to_delete.remove(doomed)
        out.to_update.append(_recycled(doomed, fresh))


def _recycled(doomed: Obj, fresh: Obj) -> Obj:
    """`fresh`'s content under `doomed`'s name, uid and resourceVersion."""
    out = copy.deepcopy(fresh)
    kept = {k: v for k, v in (doomed.get("metadata") or {}).items()
            if k not in ("labels", "annotations", "ownerReferences", "generateName")}
    out["metadata"] = {**copy.deepcopy(kept),
                       **{k: v for k, v in fresh["metadata"].items() if k != "generateName"}}
    return out
