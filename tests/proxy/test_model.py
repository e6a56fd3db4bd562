"""Conversion of API dicts into the slim snapshot."""
from __future__ import annotations

from typing import Any

import pytest

from services.proxy.model import Endpoint, ServicePortName, build_snapshot, categorize_endpoints
from tests.proxy.objects import endpoint, endpoint_slice, port, service, slice_port


def _ports(services: list[dict[str, Any]], slices: list[dict[str, Any]]) -> list[tuple[str, str, int | None]]:
    snap = build_snapshot(services, slices, node_name="node-a")
    return [(str(sp.name), sp.protocol, sp.node_port) for sp in snap.service_ports]


@pytest.mark.parametrize(
    ("svc", "expected"),
    [
        (service("plain", "10.96.0.1", [port(80)]), [("default/plain", "TCP", None)]),
        (service("headless", "None", [port(80)]), []),
        (service("no-ip", "", [port(80)]), []),
        ({**service("ext", "10.96.0.2", [port(80)]),
          "spec": {"type": "ExternalName", "externalName": "x.example"}}, []),
        (service("np", "10.96.0.3", [port(80, name="http", node_port=30001)], type_="NodePort"),
         [("default/np:http", "TCP", 30001)]),
        (service("lb", "10.96.0.4", [port(80, name="http", node_port=30002)], type_="LoadBalancer"),
         [("default/lb:http", "TCP", 30002)]),
        # A stray nodePort on a ClusterIP service is not opened.
        (service("cip", "10.96.0.5", [port(80, node_port=30003)]), [("default/cip", "TCP", None)]),
        (service("dual", "10.96.0.6", [port(53, name="dns", protocol="UDP"), port(53, name="dns-tcp")]),
         [("default/dual:dns", "UDP", None), ("default/dual:dns-tcp", "TCP", None)]),
        (service("v6", "fd00::1", [port(80)]), []),
    ],
    ids=["clusterip", "headless", "no-cluster-ip", "externalname", "nodeport", "loadbalancer",
         "clusterip-ignores-nodeport", "udp-and-tcp", "ipv6-service"],
)
def test_which_service_ports_are_proxied(svc: dict[str, Any], expected: list[tuple[str, str, int | None]]) -> None:
    assert _ports([svc], []) == expected


def test_endpoint_conditions_and_locality() -> None:
    svc = service("s", "10.96.0.1", [port(80, name="http")])
    eps = endpoint_slice("s", [
        endpoint("10.244.0.10", ready=None, node="node-a"),          # nil ready means ready
        endpoint("10.244.0.9", ready=False, node="node-b"),          # nil serving follows ready
        endpoint("10.244.0.11", ready=False, serving=True, terminating=True, node=None),
    ], [slice_port(8080, name="http")])
    (sp,) = build_snapshot([svc], [eps], node_name="node-a").service_ports
    assert sp.name == ServicePortName("default", "s", "http")
    assert sp.endpoints == (
        Endpoint("10.244.0.9", 8080, ready=False, serving=False, terminating=False, is_local=False),
        Endpoint("10.244.0.10", 8080, ready=True, serving=True, terminating=False, is_local=True),
        Endpoint("10.244.0.11", 8080, ready=False, serving=True, terminating=True, is_local=False),
    )
    assert [ep.ip for ep in sp.usable_endpoints()] == ["10.244.0.10"]


def test_slice_ports_match_by_name_and_protocol() -> None:
    svc = service("s", "10.96.0.1", [port(53, name="dns", protocol="UDP"), port(80, name="web")])
    eps = endpoint_slice("s", [endpoint("10.244.0.2")], [
        slice_port(5353, name="dns", protocol="TCP"),   # same name, other protocol: not ours
        slice_port(5353, name="dns", protocol="UDP"),
        slice_port(8080, name="other"),
    ])
    by_name = {str(sp.name): sp for sp in build_snapshot([svc], [eps], node_name="").service_ports}
    assert [ep.address for ep in by_name["default/s:dns"].endpoints] == ["10.244.0.2:5353"]
    assert by_name["default/s:web"].endpoints == ()


def test_slices_are_joined_by_label_and_namespace_and_deduplicated() -> None:
    svc = service("s", "10.96.0.1", [port(80)], namespace="a")
    slices = [
        endpoint_slice("s", [endpoint("10.244.0.2"), endpoint("10.244.0.3")], [slice_port(80)],
                       namespace="a", name="s-1"),
        # The same endpoint while it moves between slices: listed once.
        endpoint_slice("s", [endpoint("10.244.0.3", ready=False)], [slice_port(80)], namespace="a", name="s-2"),
        endpoint_slice("s", [endpoint("10.244.0.4")], [slice_port(80)], namespace="b", name="s-3"),
        endpoint_slice("s", [endpoint("fd00::4")], [slice_port(80)], namespace="a", name="s-4", address_type="IPv6"),
    ]
    (sp,) = build_snapshot([svc], slices, node_name="").service_ports
    assert [(ep.ip, ep.ready) for ep in sp.endpoints] == [("10.244.0.2", True), ("10.244.0.3", True)]


def test_endpoints_sort_numerically() -> None:
    svc = service("s", "10.96.0.1", [port(80)])
    eps = endpoint_slice("s", [endpoint("10.244.0.10"), endpoint("10.244.0.9"), endpoint("10.244.0.100")],
                         [slice_port(80)])
    (sp,) = build_snapshot([svc], [eps], node_name="").service_ports
    assert [ep.ip for ep in sp.endpoints] == ["10.244.0.9", "10.244.0.10", "10.244.0.100"]


def _one(svc: dict[str, Any], endpoints: list[dict[str, Any]]):
    slices = [endpoint_slice(svc["metadata"]["name"], endpoints, [slice_port(80)])]
    (sp,) = build_snapshot([svc], slices, node_name="node-a").service_ports
    return sp


def _with(svc: dict[str, Any], **spec: Any) -> dict[str, Any]:
    svc["spec"].update(spec)
    return svc


@pytest.mark.parametrize(
    ("spec", "type_", "expected"),
    [
        ({}, "ClusterIP", (False, False, None, None, ())),
        ({"externalTrafficPolicy": "Local", "healthCheckNodePort": 31000}, "LoadBalancer",
         (True, False, None, 31000, ())),
        # Local external policy means nothing without an external entry point
        ({"externalTrafficPolicy": "Local", "healthCheckNodePort": 31000}, "ClusterIP",
         (False, False, None, None, ())),
        ({"externalTrafficPolicy": "Local", "externalIPs": ["192.0.2.9"]}, "ClusterIP",
         (True, False, None, None, ())),
        ({"internalTrafficPolicy": "Local"}, "ClusterIP", (False, True, None, None, ())),
        ({"sessionAffinity": "ClientIP"}, "ClusterIP", (False, False, 10800, None, ())),
        ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
         "ClusterIP", (False, False, 60, None, ())),
        ({"loadBalancerSourceRanges": [" 203.0.113.0/25", "bad", "2001:db8::/64", "203.0.113.0/25"]},
         "LoadBalancer", (False, False, None, None, ("203.0.113.0/25",))),
    ],
    ids=["defaults", "etp-local", "etp-local-not-external", "etp-local-external-ip", "itp-local",
         "affinity-default", "affinity-60", "source-ranges"],
)
def test_traffic_policies_parsed(spec, type_, expected):
    svc = _with(service("s", "10.96.0.9", [port(80, node_port=30080)], type_=type_), **spec)
    sp = _one(svc, [])
    assert (sp.external_policy_local, sp.internal_policy_local, sp.affinity_seconds,
            sp.health_check_node_port, sp.load_balancer_source_ranges) == expected


def _ips(eps) -> list[str]:
    return [ep.ip for ep in eps]


@pytest.mark.parametrize(
    ("spec", "type_", "endpoints", "expected"),
    [
        # Cluster policy: every ready endpoint; no local list
        ({}, "ClusterIP", [endpoint("10.0.0.1"), endpoint("10.0.0.2", node="node-b")],
         (["10.0.0.1", "10.0.0.2"], [], ["10.0.0.1", "10.0.0.2"], True)),
        # terminating endpoints only when no ready one is left (KEP-1669)
        ({}, "ClusterIP", [endpoint("10.0.0.1", ready=False, serving=True, terminating=True),
                           endpoint("10.0.0.2", ready=True, node="node-b")],
         (["10.0.0.2"], [], ["10.0.0.2"], True)),
        ({}, "ClusterIP", [endpoint("10.0.0.1", ready=False, serving=True, terminating=True),
                           endpoint("10.0.0.2", ready=False, serving=False, terminating=True)],
         (["10.0.0.1"], [], ["10.0.0.1"], True)),
        # internalTrafficPolicy Local: only this node's endpoints, but the service has endpoints
        ({"internalTrafficPolicy": "Local"}, "ClusterIP",
         [endpoint("10.0.0.1", node="node-b"), endpoint("10.0.0.2")],
         ([], ["10.0.0.2"], ["10.0.0.2"], True)),
        ({"internalTrafficPolicy": "Local"}, "ClusterIP", [endpoint("10.0.0.1", node="node-b")],
         ([], [], [], True)),
        # externalTrafficPolicy Local: both lists, the cluster one reaching everything
        ({"externalTrafficPolicy": "Local"}, "NodePort",
         [endpoint("10.0.0.1", node="node-b"), endpoint("10.0.0.2")],
         (["10.0.0.1", "10.0.0.2"], ["10.0.0.2"], ["10.0.0.1", "10.0.0.2"], True)),
        # a local terminating endpoint serves Local traffic while remote ready ones serve Cluster
        ({"externalTrafficPolicy": "Local"}, "NodePort",
         [endpoint("10.0.0.1", node="node-b"), endpoint("10.0.0.2", ready=False, serving=True, terminating=True)],
         (["10.0.0.1"], ["10.0.0.2"], ["10.0.0.1", "10.0.0.2"], True)),
        ({}, "ClusterIP", [], ([], [], [], False)),
    ],
    ids=["cluster", "ready-first", "terminating-fallback", "itp-local", "itp-local-remote-only",
         "etp-local", "etp-local-terminating", "none"],
)
def test_categorize_endpoints(spec, type_, endpoints, expected):
    svc = _with(service("s", "10.96.0.9", [port(80, node_port=30080)], type_=type_), **spec)
    cats = categorize_endpoints(_one(svc, endpoints))
    assert (_ips(cats.cluster), _ips(cats.local), _ips(cats.reachable), cats.has_any) == expected
