"""The mirroring planner, as tables: (Endpoints, Service, mirrored slices) -> writes."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from kubecore.api.types import Obj
from services.endpointslice.mirroring_plan import plan_mirror
from services.endpointslice.planner import Plan
from tests.endpointslice.objects import service

HTTP = [{"name": "http", "port": 8080, "protocol": "TCP"}]
DNS = [{"name": "dns", "port": 53, "protocol": "UDP"}]
MANAGED = "endpointslicemirroring-controller.k8s.io"


def endpoints(*subsets: Obj, labels: dict[str, str] | None = None,
              annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": "ext", "namespace": "default", "uid": "ep-uid", "resourceVersion": "5"}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": list(subsets)}


def subset(*ips: str, not_ready: tuple[str, ...] = (), ports: list[Obj] = HTTP) -> Obj:
    out: Obj = {"ports": ports}
    if ips:
        out["addresses"] = [{"ip": ip} for ip in ips]
    if not_ready:
        out["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return out


def selectorless(**spec: Any) -> Obj:
    svc = service("ext", **spec)
    del svc["spec"]["selector"]
    return svc


def applied(p: Plan, existing: list[Obj]) -> list[Obj]:
    by_name = {s["metadata"]["name"]: s for s in existing}
    for s in p.to_delete:
        by_name.pop(s["metadata"]["name"])
    for s in p.to_update:
        by_name[s["metadata"]["name"]] = copy.deepcopy(s)
    for i, planned in enumerate(p.to_create):
        s = copy.deepcopy(planned)
        s["metadata"].update(name=f"m{i}", uid=f"m-uid-{i}", resourceVersion="1")
        by_name[s["metadata"]["name"]] = s
    return [by_name[k] for k in sorted(by_name)]


def summary(slices: list[Obj]) -> list[str]:
    out = []
    for s in slices:
        eps = ",".join(e["addresses"][0] + ("" if e["conditions"]["ready"] else "!")
                       for e in s["endpoints"])
        ports = ",".join(f"{p['name']}:{p['port']}/{p['protocol']}" for p in s["ports"])
        out.append(f"{s['addressType']} {eps} {ports}")
    return out


CASES: dict[str, tuple[Obj, Obj | None, list[str]]] = {
    "ready and not ready addresses": (
        endpoints(subset("10.0.0.1", not_ready=("10.0.0.2",))), selectorless(),
        ["IPv4 10.0.0.1,10.0.0.2! http:8080/TCP"]),
    "one slice per port set and family": (
        endpoints(subset("10.0.0.1"), subset("10.0.0.2", ports=DNS), subset("fd00::1")),
        selectorless(), ["IPv4 10.0.0.2 dns:53/UDP", "IPv4 10.0.0.1 http:8080/TCP",
                         "IPv6 fd00::1 http:8080/TCP"]),
    "invalid addresses skipped": (
        endpoints(subset("10.0.0.1", "not-an-ip")), selectorless(), ["IPv4 10.0.0.1 http:8080/TCP"]),
    "irregular IP written in its canonical form": (
        endpoints(subset("fd00:0::0:1")), selectorless(), ["IPv6 fd00::1 http:8080/TCP"]),
    "skip-mirror label: nothing": (
        endpoints(subset("10.0.0.1"), labels={"endpointslice.kubernetes.io/skip-mirror": "true"}),
        selectorless(), []),
    "leader-election lock: nothing": (
        endpoints(subset("10.0.0.1"), annotations={"control-plane.alpha.kubernetes.io/leader": "{}"}),
        selectorless(), []),
    "service with a selector: nothing (its slices come from its pods)": (
        endpoints(subset("10.0.0.1")), service("ext"), []),
    "no service: nothing": (endpoints(subset("10.0.0.1")), None, []),
    "ExternalName service: nothing": (
        endpoints(subset("10.0.0.1")), selectorless(type="ExternalName"), []),
}


@pytest.mark.parametrize(("eps", "svc", "wanted"), CASES.values(), ids=CASES.keys())
def test_mirrored(eps: Obj, svc: Obj | None, wanted: list[str]) -> None:
    assert summary(applied(plan_mirror(eps, svc, []), [])) == wanted


def test_a_mirrored_slice_in_full() -> None:
    eps = endpoints(subset("10.0.0.1"), labels={"team": "blue"},
                    annotations={"note": "x", "endpoints.kubernetes.io/last-change-trigger-time": "t",
                                 "kubectl.kubernetes.io/last-applied-configuration": "{}"})
    eps["subsets"][0]["addresses"][0].update(
        hostname="db-0", nodeName="node-1",
        targetRef={"kind": "Pod", "namespace": "default", "name": "db-0", "uid": "u"})
    (created,) = plan_mirror(eps, selectorless(), []).to_create
    assert created == {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"generateName": "ext-", "namespace": "default",
                     "labels": {"team": "blue", "kubernetes.io/service-name": "ext",
                                "endpointslice.kubernetes.io/managed-by": MANAGED},
                     "annotations": {"note": "x"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints", "name": "ext",
                                          "uid": "ep-uid", "controller": True,
                                          "blockOwnerDeletion": True}]},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "hostname": "db-0",
                       "nodeName": "node-1", "targetRef": {"kind": "Pod", "namespace": "default",
                                                           "name": "db-0", "uid": "u"}}],
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
    }


def _mirrored(eps: Obj) -> list[Obj]:
    return applied(plan_mirror(eps, selectorless(), []), [])


def test_unchanged_no_writes() -> None:
    eps = endpoints(subset("10.0.0.1", "10.0.0.2"), subset("10.0.0.3", ports=DNS))
    assert plan_mirror(eps, selectorless(), _mirrored(eps)).empty


def test_address_added_updates_the_slice_in_place() -> None:
    eps = endpoints(subset("10.0.0.1"))
    existing = _mirrored(eps)
    eps["subsets"][0]["addresses"].append({"ip": "10.0.0.2"})
    p = plan_mirror(eps, selectorless(), existing)
    assert (p.to_create, p.to_delete) == ([], [])
    assert [s["metadata"]["name"] for s in p.to_update] == ["m0"]
    assert summary(applied(p, existing)) == ["IPv4 10.0.0.1,10.0.0.2 http:8080/TCP"]


def test_ports_changed_recycles_the_old_slice() -> None:
    existing = _mirrored(endpoints(subset("10.0.0.1")))
    p = plan_mirror(endpoints(subset("10.0.0.1", ports=DNS)), selectorless(), existing)
    assert (p.to_create, p.to_delete) == ([], [])
    (updated,) = p.to_update
    assert updated["metadata"]["name"] == "m0" and updated["metadata"]["uid"] == "m-uid-0"
    assert "generateName" not in updated["metadata"]
    assert summary([updated]) == ["IPv4 10.0.0.1 dns:53/UDP"]


def test_duplicate_slices_of_a_group_go() -> None:
    eps = endpoints(subset("10.0.0.1"))
    first = _mirrored(eps)[0]
    second = copy.deepcopy(first)
    second["metadata"]["name"] = "m1"
    p = plan_mirror(eps, selectorless(), [first, second])
    assert (p.to_create, p.to_update, [s["metadata"]["name"] for s in p.to_delete]) == ([], [], ["m1"])


def test_skip_mirror_added_or_selector_set_deletes_mirrored_slices() -> None:
    eps = endpoints(subset("10.0.0.1"))
    existing = _mirrored(eps)
    eps["metadata"]["labels"] = {"endpointslice.kubernetes.io/skip-mirror": "true"}
    assert [s["metadata"]["name"] for s in plan_mirror(eps, selectorless(), existing).to_delete] == ["m0"]
    assert [s["metadata"]["name"] for s in plan_mirror(
        endpoints(subset("10.0.0.1")), service("ext"), existing).to_delete] == ["m0"]
    assert [s["metadata"]["name"] for s in plan_mirror(None, selectorless(), existing).to_delete] == ["m0"]


def test_at_most_max_per_subset_ready_first() -> None:
    eps = endpoints(subset("10.0.0.1", "10.0.0.2", not_ready=("10.0.0.3",)))
    assert summary(applied(plan_mirror(eps, selectorless(), [], max_per_subset=2), [])) == [
        "IPv4 10.0.0.1,10.0.0.2 http:8080/TCP"]
