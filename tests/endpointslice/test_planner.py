"""The planner, as tables: (service, pods, existing slices) -> creates, updates, deletes."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kubecore.api.types import Obj
from services.endpointslice.endpoints import resolve_target_port
from services.endpointslice.planner import Plan, plan
from tests.endpointslice.objects import SVC_UID, pod, pods, service


def applied(p: Plan, existing: list[Obj] = (), *, start: int = 0) -> list[Obj]:
    """The slices as they would be after `p` is applied (created ones named s<n>)."""
    by_name = {s["metadata"]["name"]: s for s in existing}
    for s in p.to_delete:
        by_name.pop(s["metadata"]["name"])
    for s in p.to_update:
        by_name[s["metadata"]["name"]] = copy.deepcopy(s)
    for i, planned in enumerate(p.to_create, start):
        s = copy.deepcopy(planned)
        s["metadata"]["name"] = f"s{i}"
        s["metadata"]["uid"] = f"slice-uid-{i}"
        s["metadata"]["resourceVersion"] = "1"
        by_name[s["metadata"]["name"]] = s
    return [by_name[k] for k in sorted(by_name)]


def slices_for(svc: Obj, the_pods: list[Obj], **kw: Any) -> list[Obj]:
    return applied(plan(svc, the_pods, [], **kw))


def _named_pod(name: str, **spec: str) -> Obj:
    p = pod(name, f"10.0.0.{ord(name[0]) - 96}")
    p["spec"].update(spec)
    return p


def _endpoint(ep: Obj) -> str:
    c = ep["conditions"]
    flags = [k for k in ("ready", "serving", "terminating") if c[k]]
    name = ep["targetRef"]["name"] + (f"@{ep['hostname']}" if "hostname" in ep else "")
    return name if flags == ["ready", "serving"] else f"{name}/{','.join(flags) or '-'}"


def _ports(s: Obj) -> str:
    return ",".join(f"{p['name']}:{p['port']}/{p['protocol']}" for p in s["ports"])


def summary(p: Plan) -> dict[str, list[Any]]:
    return {
        "create": [(_ports(s), [_endpoint(e) for e in s["endpoints"]]) for s in p.to_create],
        "update": [(s["metadata"]["name"], _ports(s), [_endpoint(e) for e in s["endpoints"]])
                   for s in p.to_update],
        "delete": [s["metadata"]["name"] for s in p.to_delete],
    }


def nothing() -> dict[str, list[Any]]:
    return {"create": [], "update": [], "delete": []}


HTTP = "http:8080/TCP"
Case = tuple[Callable[[], tuple[Obj | None, list[Obj], list[Obj]]], dict[str, list[Any]]]


def _steady(svc_kw: dict[str, Any] | None = None, n: int = 3) -> tuple[Obj, list[Obj], list[Obj]]:
    svc = service(**(svc_kw or {}))
    ps = pods(n)
    return svc, ps, slices_for(svc, ps)


def _pod_gone():
    svc, ps, existing = _steady()
    return svc, [ps[0], ps[2]], existing


def _pod_not_ready():
    svc, ps, existing = _steady()
    ps[1] = pod("p001", "10.1.0.2", ready=False)
    return svc, ps, existing


def _new_pod_fits_partial_slice():
    svc, ps, existing = _steady(n=50)
    return svc, ps + pods(1, start=50), existing


def _new_pod_next_to_full_slice():
    svc, ps, existing = _steady(n=100)
    return svc, ps + pods(1, start=100), existing


def _swap_in_full_slice():
    svc, ps, existing = _steady(n=100)
    return svc, ps[1:] + pods(1, start=100), existing


def _selector_removed():
    svc, ps, existing = _steady()
    svc["spec"]["selector"] = {}
    return svc, ps, existing


def _became_external_name():
    svc, ps, existing = _steady()
    svc["spec"] = {"type": "ExternalName", "externalName": "db.example.com", "selector": svc["spec"]["selector"]}
    return svc, ps, existing


def _service_gone():
    _, ps, existing = _steady()
    return None, ps, existing


def _service_recreated():
    _, ps, existing = _steady()
    return service(uid="svc-uid-2"), ps, existing


def _deleting(svc: Obj) -> Obj:
    svc["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return svc


def _deleting_no_slices():
    return _deleting(service()), pods(2), []


def _deleting_pod_gone():
    svc, ps, existing = _pod_gone()
    return _deleting(svc), ps, existing


def _target_port_changed():
    svc, ps, existing = _steady()
    svc["spec"]["ports"][0]["targetPort"] = 9090
    return svc, ps, existing


def _listed_twice():
    svc, ps, existing = _steady(n=2)
    dup = copy.deepcopy(existing[0])
    dup["metadata"]["name"] = "s9"
    dup["endpoints"] = dup["endpoints"][:1]
    return svc, ps, existing + [dup]


def _labels_drifted():
    svc, ps, existing = _steady()
    del existing[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
    return svc, ps, existing


def _limit_lowered():
    svc, ps, existing = _steady(n=5)
    return svc, ps, existing


NAMED = [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}]

CASES: dict[str, Case] = {
    "no pods, no slices": (lambda: (service(), [], []), nothing()),
    "ready pods in name order": (lambda: (service(), list(reversed(pods(3))), []),
                                 {**nothing(), "create": [(HTTP, ["p000", "p001", "p002"])]}),
    "pod without IP left out": (lambda: (service(), [pod("a", None), pod("b", "10.0.0.2")], []),
                                {**nothing(), "create": [(HTTP, ["b"])]}),
    "not ready pod: ready and serving false": (
        lambda: (service(), [pod("a", "10.0.0.1", ready=False)], []),
        {**nothing(), "create": [(HTTP, ["a/-"])]}),
    "terminating ready pod: serving, terminating, not ready": (
        lambda: (service(), [pod("a", "10.0.0.1", terminating=True)], []),
        {**nothing(), "create": [(HTTP, ["a/serving,terminating"])]}),
    "publishNotReadyAddresses: ready anyway, serving only if the pod is": (
        lambda: (service(publishNotReadyAddresses=True), [pod("a", "10.0.0.1", ready=False)], []),
        {**nothing(), "create": [(HTTP, ["a/ready"])]}),
    "publishNotReadyAddresses, terminating: still ready": (
        lambda: (service(publishNotReadyAddresses=True), [pod("a", "10.0.0.1", terminating=True)], []),
        {**nothing(), "create": [(HTTP, ["a/ready,serving,terminating"])]}),
    "hostname without the service's subdomain: no hostname": (
        lambda: (service(), [_named_pod("a", hostname="a", subdomain="other"),
                             _named_pod("b", hostname="b"), _named_pod("c", subdomain="web")], []),
        {**nothing(), "create": [(HTTP, ["a", "b", "c"])]}),
    "other labels, other namespace, finished pods left out": (
        lambda: (service(), [pod("a", "10.0.0.1", labels={"app": "db"}),
                             pod("b", "10.0.0.2", namespace="other"),
                             pod("c", "10.0.0.3", phase="Succeeded"),
                             pod("d", "10.0.0.4", phase="Failed"), pod("e", "10.0.0.5")], []),
        {**nothing(), "create": [(HTTP, ["e"])]}),
    "named targetPort: one slice per resolved number": (
        lambda: (service(ports=NAMED), [
            pod("a", "10.0.0.1", ports=[{"name": "web", "containerPort": 8080, "protocol": "TCP"}]),
            pod("b", "10.0.0.2", ports=[{"name": "web", "containerPort": 9090, "protocol": "TCP"}]),
            pod("c", "10.0.0.3", ports=[{"name": "web", "containerPort": 8080, "protocol": "TCP"}]),
        ], []),
        {**nothing(), "create": [("http:8080/TCP", ["a", "c"]), ("http:9090/TCP", ["b"])]}),
    "named targetPort missing on a pod: it serves no port": (
        lambda: (service(ports=NAMED), [
            pod("a", "10.0.0.1", ports=[{"name": "web", "containerPort": 8080, "protocol": "TCP"}]),
            pod("b", "10.0.0.2", ports=[{"name": "web", "containerPort": 8080, "protocol": "UDP"}]),
        ], []),
        {**nothing(), "create": [("", ["b"]), ("http:8080/TCP", ["a"])]}),
    "250 pods: 100 + 100 + 50": (
        lambda: (service(), pods(250), []),
        {**nothing(), "create": [(HTTP, [f"p{i:03d}" for i in range(100)]),
                                 (HTTP, [f"p{i:03d}" for i in range(100, 200)]),
                                 (HTTP, [f"p{i:03d}" for i in range(200, 250)])]}),
    "nothing changed: no writes": (_steady, nothing()),
    "nothing changed, 250 pods: no writes": (lambda: _steady(n=250), nothing()),
    "pod gone: its slice rewritten": (_pod_gone, {**nothing(), "update": [("s0", HTTP, ["p000", "p002"])]}),
    "pod not ready: its slice rewritten": (
        _pod_not_ready, {**nothing(), "update": [("s0", HTTP, ["p000", "p001/-", "p002"])]}),
    "new pod joins a slice with room": (
        _new_pod_fits_partial_slice,
        {**nothing(), "update": [("s0", HTTP, [f"p{i:03d}" for i in range(51)])]}),
    "new pod next to a full slice: a new slice": (
        _new_pod_next_to_full_slice, {**nothing(), "create": [(HTTP, ["p100"])]}),
    "one pod out, one in, full slice: one update": (
        _swap_in_full_slice,
        {**nothing(), "update": [("s0", HTTP, [f"p{i:03d}" for i in range(1, 101)])]}),
    "selector removed: our slices go": (_selector_removed, {**nothing(), "delete": ["s0"]}),
    "service gone: our slices go": (_service_gone, {**nothing(), "delete": ["s0"]}),
    "ExternalName keeps its selector: our slices go": (_became_external_name, {**nothing(), "delete": ["s0"]}),
    "service recreated: old owner's slice replaced": (
        _service_recreated, {**nothing(), "create": [(HTTP, ["p000", "p001", "p002"])],
                             "delete": ["s0"]}),
    "service being deleted: no new slices": (_deleting_no_slices, nothing()),
    "service being deleted: its slices still follow its pods": (
        _deleting_pod_gone, {**nothing(), "update": [("s0", HTTP, ["p000", "p002"])]}),
    "targetPort changed: new slice, old one goes": (
        _target_port_changed, {**nothing(), "create": [("http:9090/TCP", ["p000", "p001", "p002"])],
                               "delete": ["s0"]}),
    "endpoint listed twice: the second slice goes": (
        _listed_twice, {**nothing(), "delete": ["s9"]}),
    "labels drifted: slice rewritten": (
        _labels_drifted, {**nothing(), "update": [("s0", HTTP, ["p000", "p001", "p002"])]}),
}


@pytest.mark.parametrize("build, expected", CASES.values(), ids=CASES.keys())
def test_plan(build, expected):
    svc, the_pods, existing = build()
    assert summary(plan(svc, the_pods, existing)) == expected


def test_limit_lowered_spills_into_a_new_slice():
    svc, ps, existing = _limit_lowered()
    assert summary(plan(svc, ps, existing, max_endpoints=3)) == {
        **nothing(), "create": [(HTTP, ["p003", "p004"])],
        "update": [("s0", HTTP, ["p000", "p001", "p002"])]}


def test_a_created_slice_in_full():
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                         {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}])
    p = pod("a", "10.0.0.1")
    p["spec"].update(hostname="a", subdomain="web")
    (created,), updates, deletes = plan(svc, [p], [])
    assert updates == [] and deletes == []
    assert created == {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "generateName": "web-", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "web",
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                 "uid": SVC_UID, "controller": True, "blockOwnerDeletion": True}]},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"],
                       "conditions": {"ready": True, "serving": True, "terminating": False},
                       "hostname": "a", "nodeName": "node-1",
                       "targetRef": {"kind": "Pod", "name": "a", "namespace": "default",
                                     "uid": "uid-a"}}],
        "ports": [{"name": "dns", "protocol": "UDP", "port": 5353},
                  {"name": "http", "protocol": "TCP", "port": 8080}],
    }


def test_an_update_keeps_what_the_server_set():
    svc, ps, existing = _pod_gone()
    existing[0]["metadata"]["labels"]["team"] = "blue"
    (updated,) = plan(svc, ps, existing).to_update
    assert updated["metadata"]["resourceVersion"] == "1"
    assert updated["metadata"]["uid"] == "slice-uid-0"
    assert updated["metadata"]["labels"]["team"] == "blue"


@pytest.mark.parametrize("target, container_ports, expected", [
    (8080, [], 8080),
    ("8080", [], 8080),
    ("web", [{"name": "web", "containerPort": 3000, "protocol": "TCP"}], 3000),
    ("web", [{"name": "web", "containerPort": 3000, "protocol": "UDP"}], None),
    ("web", [{"name": "other", "containerPort": 3000, "protocol": "TCP"}], None),
], ids=["number", "number-as-text", "name", "name-other-protocol", "name-absent"])
def test_resolve_target_port(target, container_ports, expected):
    sp = {"port": 80, "targetPort": target, "protocol": "TCP"}
    assert resolve_target_port(sp, pod("a", "10.0.0.1", ports=container_ports)) == expected
