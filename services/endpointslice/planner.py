"""The plan: what a service's EndpointSlices should become, as creates, updates and deletes.

`plan(service, pods, existing_slices)` is pure. It keeps churn low the way kube's
reconciler does: an endpoint that did not change stays in the slice it is in; a slice is
rewritten only when one of its endpoints changed, went, or a new one is put in it; new
endpoints fill slices that are being rewritten anyway before any other slice is touched,
and only then go into new slices. Endpoints whose ports resolve differently (a named
targetPort with different numbers on different pods) go into different slices, since a
slice has one port list for all its endpoints.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import NamedTuple

from kubecore.api.types import Obj
from services.endpointslice.endpoints import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    PortSet,
    canonical_endpoint,
    endpoint_identity,
    endpoint_ports,
    pod_endpoint,
    pod_wanted,
    ports_from_api,
    ports_to_api,
    selector_matches,
    service_selector,
)

MAX_ENDPOINTS_PER_SLICE = 100
ADDRESS_TYPE = "IPv4"


class Plan(NamedTuple):
    to_create: list[Obj]
    to_update: list[Obj]
    to_delete: list[Obj]

    @property
    def empty(self) -> bool:
        return not (self.to_create or self.to_update or self.to_delete)


def desired_labels(service: Obj) -> dict[str, str]:
    return {SERVICE_NAME_LABEL: service["metadata"]["name"], MANAGED_BY_LABEL: CONTROLLER_NAME}


def owner_reference(service: Obj) -> Obj:
    meta = service["metadata"]
    return {"apiVersion": "v1", "kind": "Service", "name": meta["name"], "uid": meta.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


def desired_endpoints(service: Obj, pods: Iterable[Obj]) -> dict[PortSet, dict[str, Obj]]:
    """Port set -> endpoint identity -> endpoint, for the pods the service selects, in pod
    name order (so new slices come out the same every time)."""
    selector = service_selector(service) or {}
    namespace = service["metadata"].get("namespace")
    groups: dict[PortSet, dict[str, Obj]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"].get("name", "")):
        meta = pod.get("metadata") or {}
        if meta.get("namespace") != namespace or not selector_matches(selector, meta.get("labels")):
            continue
        if not pod_wanted(pod) or ":" in pod["status"]["podIP"]:  # IPv4 slices only
            continue
        endpoint = canonical_endpoint(pod_endpoint(service, pod))
        groups.setdefault(endpoint_ports(service, pod), {})[endpoint_identity(endpoint)] = endpoint
    return groups


def _owned_by(slice_: Obj, service: Obj) -> bool:
    uid = service["metadata"].get("uid")
    return any(ref.get("controller") and ref.get("kind") == "Service" and ref.get("uid") == uid
               for ref in (slice_.get("metadata") or {}).get("ownerReferences") or [])


def _metadata_current(slice_: Obj, service: Obj) -> bool:
    meta = slice_.get("metadata") or {}
    labels = meta.get("labels") or {}
    return (all(labels.get(k) == v for k, v in desired_labels(service).items())
            and meta.get("ownerReferences") == [owner_reference(service)])


class _Draft:
    """One existing slice on its way to its new content."""

    def __init__(self, existing: Obj, service: Obj) -> None:
        self.existing = existing
        self.endpoints: list[Obj] = []
        self.changed = not _metadata_current(existing, service)

    def render(self, service: Obj, ports: PortSet) -> Obj:
        out = copy.deepcopy(self.existing)
        meta = out.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), **desired_labels(service)}
        meta["ownerReferences"] = [owner_reference(service)]
        out["addressType"] = ADDRESS_TYPE
        out["endpoints"] = self.endpoints
        out["ports"] = ports_to_api(ports)
        return out


def _new_slice(service: Obj, ports: PortSet, endpoints: list[Obj]) -> Obj:
    meta = service["metadata"]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{meta['name']}-", "namespace": meta.get("namespace"),
                         "labels": desired_labels(service),
                         "ownerReferences": [owner_reference(service)]},
            "addressType": ADDRESS_TYPE, "endpoints": endpoints, "ports": ports_to_api(ports)}


def _name(slice_: Obj) -> str:
    return str((slice_.get("metadata") or {}).get("name") or "")


def _keep_still_wanted(drafts: list[_Draft], remaining: dict[str, Obj], max_endpoints: int) -> None:
    """Keep every endpoint that is still wanted where it is, in its new form; whatever is
    kept is taken out of `remaining`. A slice over a lowered limit spills back into it."""
    for draft in drafts:
        for current in draft.existing.get("endpoints") or []:
            identity = endpoint_identity(current)
            if identity in remaining:
                want = remaining.pop(identity)
                draft.endpoints.append(want)
                if canonical_endpoint(current) != want:
                    draft.changed = True
            else:
                draft.changed = True  # gone, or listed twice
        if len(draft.endpoints) > max_endpoints:  # the limit was lowered: spill over
            for spilled in draft.endpoints[max_endpoints:]:
                remaining[endpoint_identity(spilled)] = spilled
            draft.endpoints = draft.endpoints[:max_endpoints]
            draft.changed = True


def _fill_rewritten(drafts: list[_Draft], new: list[Obj], max_endpoints: int) -> list[Obj]:
    """New endpoints go first into slices that are being rewritten anyway; returns the rest."""
    for draft in drafts:
        if draft.changed and new and len(draft.endpoints) < max_endpoints:
            room = max_endpoints - len(draft.endpoints)
            draft.endpoints.extend(new[:room])
            new = new[room:]
    return new


def _chunk_new(drafts: list[_Draft], new: list[Obj], max_endpoints: int) -> list[list[Obj]]:
    """Full chunks for new slices; a last partial chunk goes into the fullest untouched
    slice that can take it (one write either way, one slice fewer)."""
    chunks = [new[i:i + max_endpoints] for i in range(0, len(new), max_endpoints)]
    if chunks and len(chunks[-1]) < max_endpoints:
        fits = [d for d in drafts if not d.changed and d.endpoints
                and len(d.endpoints) + len(chunks[-1]) <= max_endpoints]
        if fits:
            fullest = max(fits, key=lambda d: len(d.endpoints))
            fullest.endpoints.extend(chunks.pop())
            fullest.changed = True
    return chunks


def _plan_port_set(service: Obj, ports: PortSet, endpoints: dict[str, Obj], drafts: list[_Draft],
                   max_endpoints: int, out: Plan) -> None:
    """The writes for the slices of one port set, appended to `out`."""
    remaining = dict(endpoints)
    _keep_still_wanted(drafts, remaining, max_endpoints)
    new = _fill_rewritten(drafts, list(remaining.values()), max_endpoints)
    for chunk in _chunk_new(drafts, new, max_endpoints):
        out.to_create.append(_new_slice(service, ports, chunk))
    for draft in drafts:
        if not draft.endpoints:
            out.to_delete.append(draft.existing)
        elif draft.changed:
            out.to_update.append(draft.render(service, ports))


def plan(service: Obj | None, pods: Iterable[Obj], existing_slices: Iterable[Obj], *,
         max_endpoints: int = MAX_ENDPOINTS_PER_SLICE) -> Plan:
    """The writes that make `existing_slices` (this controller's slices for the service)
    list the endpoints of `pods` (any pods; those the service selects are picked here).

    A missing service, or one without a selector, keeps none of this controller's slices."""
    existing = sorted(existing_slices, key=_name)
    if service is None or service_selector(service) is None:
        return Plan([], [], existing)
    out = Plan([], [], [])
    by_ports: dict[PortSet, list[_Draft]] = {}
    for slice_ in existing:
        if slice_.get("addressType") != ADDRESS_TYPE or not _owned_by(slice_, service):
            out.to_delete.append(slice_)  # another address family, or a previous service's
            continue
        by_ports.setdefault(ports_from_api(slice_.get("ports")), []).append(_Draft(slice_, service))

    wanted = desired_endpoints(service, pods)
    for ports in sorted(set(by_ports) - set(wanted)):
        out.to_delete.extend(d.existing for d in by_ports[ports])

    for ports, endpoints in sorted(wanted.items()):
        _plan_port_set(service, ports, endpoints, by_ports.get(ports, []), max_endpoints, out)
    if (service.get("metadata") or {}).get("deletionTimestamp"):
        # A service on its way out gets no new slices: with Foreground deletion the garbage
        # collector deletes them meanwhile, and would chase the ones made here (as kube's).
        return Plan([], out.to_update, out.to_delete)
    return out
