"""Cluster states shared by the golden rule tests and the packet-level tests."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.proxy.objects import endpoint, endpoint_slice, external, port, service, slice_port


@dataclass(frozen=True)
class ClusterState:
    id: str
    services: list[dict[str, Any]]
    slices: list[dict[str, Any]]


# The Service and pods of the seed article's kube-proxy walkthrough: its
# listing shows the real chain names kube-proxy produced for them.
ARTICLE_MYSVC = ClusterState(
    "one-service-three-endpoints",
    [service("mysvc", "10.96.62.22", [port(8080)])],
    [
        endpoint_slice(
            "mysvc",
            [endpoint("10.244.2.3", node="kind-worker2"), endpoint("10.244.1.2", node="kind-worker"),
             endpoint("10.244.2.2", node="kind-worker2")],
            [slice_port(8080)],
        )
    ],
)

NO_ENDPOINTS = ClusterState(
    "no-endpoints-reject",
    [service("empty", "10.96.0.50", [port(80, name="http")])],
    [endpoint_slice("empty", [], [slice_port(8080, name="http")])],
)

NODE_PORT = ClusterState(
    "nodeport",
    [
        service("web", "10.96.0.60", [port(80, name="http", target_port=8080, node_port=30080)], type_="NodePort"),
        service("idle", "10.96.0.61", [port(81, name="http", node_port=30081)], type_="NodePort"),
    ],
    [
        endpoint_slice("web", [endpoint("10.244.1.5"), endpoint("10.244.2.6", node="node-b")],
                       [slice_port(8080, name="http")]),
    ],
)

UDP_DNS = ClusterState(
    "udp",
    [service("kube-dns", "10.96.0.10", [port(53, name="dns", protocol="UDP")], namespace="kube-system")],
    [
        endpoint_slice("kube-dns", [endpoint("10.244.0.5"), endpoint("10.244.0.6")],
                       [slice_port(53, name="dns", protocol="UDP")], namespace="kube-system"),
    ],
)

TERMINATING = ClusterState(
    "terminating-endpoints",
    [
        # One ready endpoint: terminating ones get no new connections.
        service("rolling", "10.96.0.70", [port(80)]),
        # Nothing ready: the serving+terminating endpoint is used, the
        # non-serving terminating one is not.
        service("draining", "10.96.0.71", [port(80)]),
    ],
    [
        endpoint_slice("rolling", [
            endpoint("10.244.1.10"),
            endpoint("10.244.1.11", ready=False, serving=True, terminating=True),
        ], [slice_port(8080)]),
        endpoint_slice("draining", [
            endpoint("10.244.1.20", ready=False, serving=True, terminating=True),
            endpoint("10.244.1.21", ready=False, serving=False, terminating=True),
        ], [slice_port(8080)]),
    ],
)

TWO_SERVICES = ClusterState(
    "two-services",
    # Given in reverse order: output order must not depend on input order.
    [service("zeta", "10.96.0.90", [port(80)], namespace="prod"),
     service("alpha", "10.96.0.80", [port(80)], namespace="prod")],
    [endpoint_slice("zeta", [endpoint("10.244.3.9")], [slice_port(9090)], namespace="prod"),
     endpoint_slice("alpha", [endpoint("10.244.3.8")], [slice_port(8080)], namespace="prod")],
)

NAMED_PORTS = ClusterState(
    "named-ports",
    [service("app", "10.96.0.100", [port(80, name="http", target_port="web"),
                                   port(9100, name="metrics", target_port="prom")])],
    [
        # Two slices for one service; named target ports resolve to
        # different container ports.
        endpoint_slice("app", [endpoint("10.244.4.2")],
                       [slice_port(8080, name="http"), slice_port(9102, name="metrics")], name="app-1"),
        endpoint_slice("app", [endpoint("10.244.4.3")],
                       [slice_port(8081, name="http"), slice_port(9103, name="metrics")], name="app-2"),
    ],
)

EXTERNAL_ADDRESSES = ClusterState(
    "external-and-load-balancer-ips",
    [
        # reachable on an external IP and a load balancer's VIP: KUBE-EXT- then KUBE-SVC-
        external(service("lb", "10.96.0.110", [port(80, name="http", target_port=8080, node_port=30110)],
                         type_="LoadBalancer"),
                 external_ips=["192.0.2.10"], lb_ips=["10.250.0.200"]),
        # an ingress IP in Proxy mode gets no rules; no endpoints: every address REJECTs
        external(service("idle", "10.96.0.111", [port(81)], type_="LoadBalancer"),
                 external_ips=["192.0.2.11"], lb_ips=["10.250.0.201"]),
        external(service("proxied", "10.96.0.112", [port(82)], type_="LoadBalancer"),
                 lb_ips=["10.250.0.202"], ip_mode="Proxy"),
    ],
    [
        endpoint_slice("lb", [endpoint("10.244.1.5")], [slice_port(8080, name="http")]),
        endpoint_slice("proxied", [endpoint("10.244.1.6")], [slice_port(82)]),
    ],
)

ALL_CASES = [ARTICLE_MYSVC, NO_ENDPOINTS, NODE_PORT, UDP_DNS, TERMINATING, TWO_SERVICES, NAMED_PORTS,
             EXTERNAL_ADDRESSES]


# What a crashed earlier proxy left in a node's tables, beside rules that belong to others
# (a CNI chain, a filter rule): the first sync must remove ours and keep theirs.
LEFTOVERS = (
    "*nat\n"
    ":KUBE-SERVICES - [0:0]\n"
    ":KUBE-SVC-LEFTOVERLEFTOVER - [0:0]\n"
    ":KUBE-SEP-LEFTOVERLEFTOVER - [0:0]\n"
    ":CNI-HOSTPORT-DNAT - [0:0]\n"
    "-A KUBE-SERVICES -j KUBE-SVC-LEFTOVERLEFTOVER\n"
    "-A KUBE-SVC-LEFTOVERLEFTOVER -j KUBE-SEP-LEFTOVERLEFTOVER\n"
    "-A KUBE-SEP-LEFTOVERLEFTOVER -p tcp -j DNAT --to-destination 10.244.9.9:80\n"
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
    "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
    "COMMIT\n"
    "*filter\n"
    "-A INPUT -s 192.0.2.1/32 -j DROP\n"
    "COMMIT\n"
)
