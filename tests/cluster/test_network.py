"""The launcher's route overlap check, against real routing tables in a scratch namespace."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from cluster.config import ROUTE_PROTO, ClusterConfig
from cluster.network import overlapping_routes, route_pod_range


@pytest.fixture
def scratch_ns():
    name = f"mctest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1"], check=True)
        for dev in ("d0", "d1"):
            subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def add_route(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, "route", "add", *args], check=True)


def test_a_route_into_a_cluster_range_is_reported(scratch_ns):
    cfg = ClusterConfig()
    assert overlapping_routes(cfg, scratch_ns) == []
    add_route(scratch_ns, "10.96.4.0/24", "dev", "d0")
    add_route(scratch_ns, "192.0.2.0/24", "dev", "d0")
    clashes = overlapping_routes(cfg, scratch_ns)
    assert len(clashes) == 1 and clashes[0].startswith("10.96.4.0/24")


def test_a_wider_route_counts_but_our_own_do_not(scratch_ns):
    cfg = ClusterConfig()
    add_route(scratch_ns, "blackhole", "10.244.0.0/16", "proto", str(ROUTE_PROTO))  # left by a cluster of ours
    assert overlapping_routes(cfg, scratch_ns) == []
    add_route(scratch_ns, "10.0.0.0/8", "dev", "d0")
    assert [c.split()[0] for c in overlapping_routes(cfg, scratch_ns)] == ["10.0.0.0/8"]


def routes_in(ns: str) -> str:
    return subprocess.run(["ip", "-n", ns, "-4", "route", "show", "proto", str(ROUTE_PROTO)],
                          check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("cidr,via,why", [
    ("0.0.0.0/1", "10.250.0.12", "cidr 0.0.0.0/1 is out the range of cluster cidr 10.244.0.0/16"),
    ("128.0.0.0/1", "10.250.0.12", "cidr 128.0.0.0/1 is out the range of cluster cidr 10.244.0.0/16"),
    ("10.244.0.0/16", "10.250.0.12", "must be a /24 (the node CIDR mask size)"),
    ("10.244.1.0/24", "192.0.2.1", "the gateway is not in the node network 10.250.0.0/24"),
], ids=["half-of-everything-low", "half-of-everything-high", "the-whole-cluster", "gateway-elsewhere"])
def test_the_launcher_routes_only_node_subnets_via_the_node_network(scratch_ns, cidr, via, why):
    cfg = ClusterConfig()
    subprocess.run(["ip", "-n", scratch_ns, "addr", "add", "10.250.0.1/24", "dev", "d0"], check=True)
    refused = route_pod_range(cfg, cidr, via, netns=scratch_ns)
    assert refused is not None and why in refused
    assert routes_in(scratch_ns) == ""
    assert route_pod_range(cfg, "10.244.1.0/24", "10.250.0.12", netns=scratch_ns) is None
    assert routes_in(scratch_ns).split()[:3] == ["10.244.1.0/24", "via", "10.250.0.12"]


def test_down_takes_only_its_own_clusters_routes():
    from cluster.config import ClusterConfig
    from cluster.network import _route_of

    cfg = ClusterConfig(name="a")
    cfg.node_cidr, cfg.cluster_cidr, cfg.service_cidr = "10.250.0.0/24", "10.244.0.0/16", "10.96.0.0/12"
    assert _route_of(cfg, "blackhole 10.96.0.0/12 proto 252")
    assert _route_of(cfg, "blackhole 10.244.0.0/16 proto 252")
    assert _route_of(cfg, "10.244.1.0/24 via 10.250.0.12 dev mc-br0 proto 252")
    # another cluster's, running beside it (the e2e suite's ranges)
    assert not _route_of(cfg, "blackhole 10.112.0.0/12 proto 252")
    assert not _route_of(cfg, "10.245.1.0/24 via 10.251.0.12 dev mce-br0 proto 252")
