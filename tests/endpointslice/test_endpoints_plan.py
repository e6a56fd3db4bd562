"""The core/v1 Endpoints planner, as tables: (service, pods, current Endpoints) -> the write."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from kubecore.api.types import Obj
from services.endpointslice.endpoints_plan import (
    HEADLESS_LABEL,
    LAST_CHANGE_TRIGGER_TIME,
    OVER_CAPACITY,
    plan_endpoints,
)
from tests.endpointslice.objects import pod, pods, service

HTTP = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
TWO = [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
       {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}]
WEB = [{"name": "web", "containerPort": 8080, "protocol": "TCP"}]


def _summary(subsets: list[Obj]) -> list[str]:
    """Each subset as 'ip,ip | !ip | port,port' (ready | not ready | ports)."""
    out = []
    for s in subsets:
        ready = ",".join(a["ip"] + (f"@{a['hostname']}" if "hostname" in a else "")
                         for a in s.get("addresses", []))
        not_ready = ",".join("!" + a["ip"] for a in s.get("notReadyAddresses", []))
        ports = ",".join(f"{p.get('name', '')}:{p['port']}" for p in s.get("ports", []))
        out.append(" | ".join(x for x in (ready, not_ready, ports) if x))
    return out


def _named(name: str, ip: str, **spec: Any) -> Obj:
    p = pod(name, ip, ports=WEB)
    p["spec"].update(spec)
    return p


CASES: dict[str, tuple[Obj, list[Obj], list[str]]] = {
    "ready pods, one subset": (service(ports=HTTP), pods(2), ["10.1.0.1,10.1.0.2 | http:8080"]),
    "not ready pod: notReadyAddresses": (
        service(ports=HTTP), [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False)],
        ["10.0.0.1 | !10.0.0.2 | http:8080"]),
    "publishNotReadyAddresses: every pod ready": (
        service(ports=HTTP, publishNotReadyAddresses=True), [pod("b", "10.0.0.2", ready=False)],
        ["10.0.0.2 | http:8080"]),
    "terminating pod left out": (
        service(ports=HTTP), [pod("a", "10.0.0.1", terminating=True), pod("b", "10.0.0.2")],
        ["10.0.0.2 | http:8080"]),
    "terminating pod kept with publishNotReadyAddresses": (
        service(ports=HTTP, publishNotReadyAddresses=True), [pod("a", "10.0.0.1", terminating=True)],
        ["10.0.0.1 | http:8080"]),
    "no IP, finished, other labels or namespace: left out": (
        service(ports=HTTP), [pod("a"), pod("b", "10.0.0.2", phase="Succeeded"),
                              pod("c", "10.0.0.3", labels={"app": "db"}),
                              pod("d", "10.0.0.4", namespace="other")], []),
    "named targetPort: pods resolving it differently get their own subsets": (
        service(ports=TWO), [pod("a", "10.0.0.1", ports=WEB),
                             pod("b", "10.0.0.2", ports=[{"name": "web", "containerPort": 8081,
                                                          "protocol": "TCP"}])],
        ["10.0.0.1 | http:8080", "10.0.0.2 | http:8081", "10.0.0.1,10.0.0.2 | metrics:9090"]),
    "pods sharing all ports share a subset": (
        service(ports=TWO), [pod("a", "10.0.0.1", ports=WEB), pod("b", "10.0.0.2", ports=WEB)],
        ["10.0.0.1,10.0.0.2 | http:8080,metrics:9090"]),
    "pod without the named port serves only the others": (
        service(ports=TWO), [pod("a", "10.0.0.1")], ["10.0.0.1 | metrics:9090"]),
    "headless without ports: addresses, no ports": (
        service(ports=[], clusterIP="None"), [pod("a", "10.0.0.1")], ["10.0.0.1"]),
    "not headless without ports: nothing": (service(ports=[], clusterIP="10.96.0.9"), [pod("a", "10.0.0.1")], []),
    "hostname when the pod's subdomain is the service": (
        service(ports=HTTP), [_named("a", "10.0.0.1", hostname="web-0", subdomain="web"),
                              _named("b", "10.0.0.2", hostname="web-1", subdomain="db"),
                              _named("c", "10.0.0.3", hostname="web-2")],
        ["10.0.0.1@web-0,10.0.0.2,10.0.0.3 | http:8080"]),
    "addresses in kube's order (the IP as text), not by pod name": (
        service(ports=HTTP), [pod("a", "10.0.0.9"), pod("b", "10.0.0.10")], ["10.0.0.10,10.0.0.9 | http:8080"]),
}


@pytest.mark.parametrize(("svc", "the_pods", "wanted"), CASES.values(), ids=CASES.keys())
def test_subsets(svc: Obj, the_pods: list[Obj], wanted: list[str]) -> None:
    write = plan_endpoints(svc, the_pods, None)
    assert write.action == "create" and write.endpoints is not None
    assert _summary(write.endpoints["subsets"]) == wanted


def test_a_created_endpoints_in_full() -> None:
    svc = service(ports=HTTP, clusterIP="None")
    svc["metadata"]["labels"] = {"app": "web"}
    p = _named("a", "10.0.0.1", hostname="web-0", subdomain="web")
    write = plan_endpoints(svc, [p], None, trigger_time="2026-01-01T00:00:00Z")
    assert write == ("create", {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "default",
                     "labels": {"app": "web", HEADLESS_LABEL: ""},
                     "annotations": {LAST_CHANGE_TRIGGER_TIME: "2026-01-01T00:00:00Z"}},
        "subsets": [{"addresses": [{"ip": "10.0.0.1", "hostname": "web-0", "nodeName": "node-1",
                                    "targetRef": {"kind": "Pod", "namespace": "default", "name": "a",
                                                  "uid": "uid-a"}}],
                     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]})


def _stored(write_obj: Obj) -> Obj:
    out = copy.deepcopy(write_obj)
    out["metadata"].update(uid="ep-uid", resourceVersion="7")
    return out


def test_unchanged_no_write_even_if_a_targetref_resource_version_differs() -> None:
    svc, ps = service(ports=HTTP), pods(3)
    current = _stored(plan_endpoints(svc, ps, None).endpoints or {})
    current["subsets"][0]["addresses"][0]["targetRef"]["resourceVersion"] = "42"
    assert plan_endpoints(svc, ps, current, trigger_time="2026-01-01T00:00:00Z").action == "none"


def test_change_updates_in_place_keeping_what_the_server_set() -> None:
    svc, ps = service(ports=HTTP), pods(3)
    current = _stored(plan_endpoints(svc, ps, None, trigger_time="2026-01-01T00:00:00Z").endpoints or {})
    current["metadata"]["annotations"]["team"] = "blue"
    action, new = plan_endpoints(svc, ps[:2], current)
    assert action == "update" and new is not None
    assert new["metadata"]["resourceVersion"] == "7" and new["metadata"]["uid"] == "ep-uid"
    assert new["metadata"]["annotations"] == {"team": "blue"}  # no trigger this time: cleared
    assert _summary(new["subsets"]) == ["10.1.0.1,10.1.0.2 | http:8080"]


def test_service_labels_followed() -> None:
    svc, ps = service(ports=HTTP, clusterIP="10.96.0.10"), pods(1)
    current = _stored(plan_endpoints(svc, ps, None).endpoints or {})
    svc["metadata"]["labels"] = {"tier": "front"}
    action, new = plan_endpoints(svc, ps, current)
    assert action == "update" and new is not None and new["metadata"]["labels"] == {"tier": "front"}


def test_over_capacity_truncated_and_annotated_ready_first() -> None:
    svc = service(ports=HTTP)
    ps = pods(1001) + [pod("zz-not-ready", "10.9.0.1", ready=False)]
    action, new = plan_endpoints(svc, ps, None)
    assert action == "create" and new is not None
    assert new["metadata"]["annotations"] == {OVER_CAPACITY: "truncated"}
    (subset,) = new["subsets"]
    assert len(subset["addresses"]) == 1000 and "notReadyAddresses" not in subset
    current = _stored(new)
    assert plan_endpoints(svc, ps[:999], current)[0] == "update"  # back under: annotation goes
    assert OVER_CAPACITY not in (plan_endpoints(svc, ps[:999], current)[1] or {})["metadata"].get(
        "annotations", {})


def test_service_gone_deletes_selectorless_and_external_name_left_alone() -> None:
    current = _stored(plan_endpoints(service(ports=HTTP), pods(1), None).endpoints or {})
    assert plan_endpoints(None, [], current).action == "delete"
    assert plan_endpoints(None, [], None).action == "none"
    users = service(ports=HTTP)
    del users["spec"]["selector"]
    assert plan_endpoints(users, pods(1), current).action == "none"
    assert plan_endpoints(service(ports=HTTP, type="ExternalName"), pods(1), current).action == "none"
