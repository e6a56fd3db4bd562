"""The node network rules as tables: which pod ranges, node addresses and routes a Node object
may ask for, given the cluster's ranges. The API server, the launcher and the node agents all
decide with these functions."""
from __future__ import annotations

import pytest

from kubecore.api.nodenet import (
    NodeRanges,
    node_address_problem,
    pod_cidr_problem,
    pod_routes,
    route_problem,
)
from kubecore.api.types import Obj

RANGES = NodeRanges.parse("10.244.0.0/16", 24, "10.250.0.0/24")
NO_NODE_NETWORK = NodeRanges.parse("10.244.0.0/16", 24)
OUT = "is out the range of cluster cidr 10.244.0.0/16"
MASK = "must be a /24 (the node CIDR mask size) of the cluster cidr 10.244.0.0/16"


@pytest.mark.parametrize("cidr,expected", [
    ("10.244.0.0/24", None),
    ("10.244.255.0/24", None),
    ("0.0.0.0/1", f"cidr 0.0.0.0/1 {OUT}"),
    ("128.0.0.0/1", f"cidr 128.0.0.0/1 {OUT}"),
    ("0.0.0.0/0", f"cidr 0.0.0.0/0 {OUT}"),
    ("10.0.0.0/8", f"cidr 10.0.0.0/8 {OUT}"),
    ("10.244.0.0/16", MASK),
    ("10.244.1.0/25", MASK),
    ("10.244.1.0/23", MASK),
    ("192.168.1.0/24", f"cidr 192.168.1.0/24 {OUT}"),
    ("fd00::/64", f"cidr fd00::/64 {OUT}"),
    ("10.244.1.5/24", "must be a network address with no host bits set (e.g. 10.244.1.0/24)"),
    ("10.244.1.0", "must be valid CIDR"),
    ("default", "must be valid CIDR"),
    ("10.244.1.0/24 via 1.2.3.4", "must be valid CIDR"),
    (None, "must be valid CIDR"),
], ids=["first", "last", "half-of-everything-low", "half-of-everything-high", "default-route",
        "wider", "the-cluster-cidr", "narrower", "two-nodes-worth", "outside", "other-family",
        "host-bits", "no-prefix", "word", "trailing-words", "not-a-string"])
def test_pod_cidr(cidr: str, expected: str | None) -> None:
    assert pod_cidr_problem(cidr, RANGES) == expected


@pytest.mark.parametrize("address,ranges,expected", [
    ("10.250.0.11", RANGES, None),
    ("10.250.0.11", None, None),
    ("127.0.0.1", None, None),
    ("127.0.0.1", RANGES, "must be an address of the node network 10.250.0.0/24"),
    ("192.0.2.1", RANGES, "must be an address of the node network 10.250.0.0/24"),
    ("127.0.0.1:2379", None, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
    ("127.0.0.1:2379/v3/kv/range?x#", None,
     "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
    ("[::1]", None, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
    ("fe80::1%eth0", None, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
    ("localhost", None, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
    (7, None, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
], ids=["in-node-network", "no-node-network", "loopback-unchecked", "loopback-outside",
        "outside", "with-port", "url", "brackets", "zone", "name", "not-a-string"])
def test_node_address(address: str, ranges: NodeRanges | None, expected: str | None) -> None:
    assert node_address_problem(address, ranges) == expected


@pytest.mark.parametrize("cidr,via,ranges,refused", [
    ("10.244.1.0/24", "10.250.0.12", RANGES, None),
    ("10.244.1.0/24", "10.0.0.2", NO_NODE_NETWORK, None),
    ("0.0.0.0/1", "10.250.0.12", RANGES, "out the range of cluster cidr"),
    ("128.0.0.0/1", "10.250.0.12", RANGES, "out the range of cluster cidr"),
    ("0.0.0.0/0", "10.250.0.12", RANGES, "out the range of cluster cidr"),
    ("10.244.0.0/16", "10.250.0.12", RANGES, "node CIDR mask size"),
    ("10.244.1.0/24", "192.0.2.1", RANGES, "not in the node network"),
    ("10.244.1.0/24", "10.244.1.7", NO_NODE_NETWORK, "inside the pod ranges"),
    ("10.244.1.0/24", "10.244.9.7", RANGES, "inside the pod ranges"),
    ("10.244.1.0/24", "127.0.0.1", NO_NODE_NETWORK, "not a node's unicast address"),
    ("10.244.1.0/24", "0.0.0.0", NO_NODE_NETWORK, "not a node's unicast address"),
    ("10.244.1.0/24", "224.0.0.1", NO_NODE_NETWORK, "not a node's unicast address"),
    ("10.244.1.0/24", "169.254.0.1", NO_NODE_NETWORK, "not a node's unicast address"),
    ("10.244.1.0/24", "fd00::12", NO_NODE_NETWORK, "not of the range's IP family"),
    ("10.244.1.0/24", "10.250.0.12 dev lo", RANGES, "must be a valid IP address"),
    ("10.244.1.0/24", "10.250.0.12/24", RANGES, "must be a valid IP address"),
], ids=["ok", "ok-without-node-network", "half-low", "half-high", "default", "the-whole-cluster",
        "gateway-outside-node-network", "gateway-in-its-range", "gateway-in-the-cluster",
        "gateway-loopback", "gateway-unspecified", "gateway-multicast", "gateway-link-local",
        "gateway-other-family", "gateway-with-words", "gateway-with-prefix"])
def test_route(cidr: str, via: str, ranges: NodeRanges, refused: str | None) -> None:
    why = route_problem(cidr, via, ranges)
    assert (why is None) if refused is None else (why is not None and refused in why), why


def node(name: str, cidr: object = None, ip: object = None) -> Obj:
    n: Obj = {"metadata": {"name": name}, "spec": {}, "status": {"addresses": []}}
    if cidr is not None:
        n["spec"]["podCIDR"] = cidr
    if ip is not None:
        n["status"]["addresses"] = [{"type": "Hostname", "address": name},
                                    {"type": "InternalIP", "address": ip}]
    return n


def test_pod_routes_keep_what_fits_and_name_what_does_not() -> None:
    nodes = [node("me", "10.244.0.0/24", "10.250.0.11"), node("b", "10.244.1.0/24", "10.250.0.12"),
             node("evil", "0.0.0.0/1", "10.250.0.13"), node("etcd", "10.244.3.0/24", "127.0.0.1:2379"),
             node("no-ip", "10.244.4.0/24"), node("no-cidr", None, "10.250.0.15"),
             node("odd", ["10.244.5.0/24"], "10.250.0.16"),
             {"metadata": {"name": "broken"}, "spec": {"podCIDR": "10.244.6.0/24"}, "status": "x"}]
    routes, refused = pod_routes(nodes, RANGES, skip="me")
    assert routes == {("10.244.1.0/24", "10.250.0.12")}
    assert [(r.node, r.cidr, r.via) for r in refused] == [
        ("evil", "0.0.0.0/1", "10.250.0.13"), ("etcd", "10.244.3.0/24", "127.0.0.1:2379"),
        ("odd", "['10.244.5.0/24']", "10.250.0.16")]


@pytest.mark.parametrize("args,message", [
    (("0.0.0.0/0", 24, ""), "may not be the whole address space"),
    (("10.244.0.0/16", 8, ""), "does not fit"),
    (("10.244.0.0/16", 33, ""), "does not fit"),
    (("10.244.0.1/16", 24, ""), "cluster CIDR"),
    (("10.244.0.0/16", 24, "10.250.0.0/33"), "node network"),
], ids=["everything", "mask-wider-than-cluster", "mask-too-long", "host-bits", "bad-node-network"])
def test_ranges_from_flags(args: tuple[str, int, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NodeRanges.parse(*args)
